#!/bin/sh
# The image's start command: bring the schema up to date, then hand the process over to the
# command (by default gunicorn with gunicorn.conf.py). `exec` makes the server PID 1's direct
# replacement, so SIGTERM from `docker stop` or ECS reaches gunicorn and it shuts down gracefully.
#
# OPPLY_MIGRATE_ON_START=0 skips the migration: do that when migrations run as a separate
# one-off task before a deployment (docs/deployment.md), or when several replicas start at once.
set -eu

if [ "${OPPLY_MIGRATE_ON_START:-1}" = "1" ]; then
    opply db upgrade
fi

if [ "$#" -eq 0 ]; then
    set -- gunicorn --config gunicorn.conf.py opply.entrypoints.wsgi:app
fi
exec "$@"
