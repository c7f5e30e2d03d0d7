#!/bin/sh
# Write PgBouncer's configuration and auth file from the environment, then become PgBouncer
# (`exec`, so SIGTERM and SIGINT reach it). Written at every start, into a directory only the
# postgres user can read: the password is never part of the image.
#
#   DB_HOST, DB_NAME, DB_USER, DB_PASSWORD   the database behind the pooler (required)
#   DB_PORT (5432), LISTEN_PORT (6432)
#   POOL_MODE (transaction), DEFAULT_POOL_SIZE (10), MAX_DB_CONNECTIONS (20), MAX_CLIENT_CONN (500)
#   AUTH_TYPE (scram-sha-256; the app's user and password must match DB_USER and DB_PASSWORD)
#   PGBOUNCER_CONF_DIR (/run/pgbouncer)
set -eu

: "${DB_HOST:?set DB_HOST}" "${DB_NAME:?set DB_NAME}" "${DB_USER:?set DB_USER}"
: "${DB_PASSWORD:?set DB_PASSWORD}"
conf_dir="${PGBOUNCER_CONF_DIR:-/run/pgbouncer}"
umask 077
mkdir -p "$conf_dir"

# auth_file format: "user" "password", a double quote inside doubled.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quoted "$DB_USER")" "$(quoted "$DB_PASSWORD")" > "$conf_dir/userlist.txt"

cat > "$conf_dir/pgbouncer.ini" <<INI
[databases]
$DB_NAME = host=$DB_HOST port=${DB_PORT:-5432} dbname=$DB_NAME

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir =
auth_type = ${AUTH_TYPE:-scram-sha-256}
auth_file = $conf_dir/userlist.txt
; A server connection serves one transaction, then the next client: the app keeps no session
; state (docs/deployment.md, "Through a pooler").
pool_mode = ${POOL_MODE:-transaction}
default_pool_size = ${DEFAULT_POOL_SIZE:-10}
max_db_connections = ${MAX_DB_CONNECTIONS:-20}
max_client_conn = ${MAX_CLIENT_CONN:-500}
server_idle_timeout = 60
log_connections = 0
log_disconnections = 0
INI

exec pgbouncer "$conf_dir/pgbouncer.ini"
