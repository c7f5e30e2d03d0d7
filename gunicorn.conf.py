"""gunicorn settings, all overridable from the environment (the container's start command).

Logging: gunicorn's own lines and the app's go to stdout as JSON (``opply.entrypoints.jsonlog``).
gunicorn's access log is off by default because the app writes one JSON line per request with
the request id, route, status, duration and user id; ``GUNICORN_ACCESSLOG=-`` turns it back on.
"""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

from opply.entrypoints.jsonlog import gunicorn_logconfig

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
# gunicorn's sync worker, answering its own refusals (below) as problem+json.
worker_class = "opply.entrypoints.gunicorn_worker.ProblemSyncWorker"
# Requests refused before the app (414 uri_too_long, 431 header_fields_too_large): limits no
# client of the API reaches. Its longest URL (a search of 100 characters, percent-encoded) is
# under 2 KB and its largest header a JWT of under 1 KB; browsers' cookies stay well under 16 KB.
limit_request_line = 8190  # gunicorn's maximum (its default is 4094)
limit_request_field_size = 16384  # per header (default 8190), as an AWS ALB allows
limit_request_fields = 100  # headers per request (gunicorn's default)
# A worker silent for this long is killed and replaced (a stuck request must not hold it forever).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (docker stop, an ECS deployment) workers finish their requests for up to this long.
# Keep it below the platform's stop timeout (compose stop_grace_period, ECS stopTimeout).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Longer than the load balancer's idle timeout would be wrong; ALB's default is 60 s and it
# opens new connections freely, so a short keep-alive is safe.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 50
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None


class QuietAccessLogger(Logger):
    """gunicorn's logger, minus the access line when the access log is off. gunicorn builds
    that line (a dict of some twenty atoms, dates formatted) for every request whenever a
    logging config is given, ours included, and then hands it to a logger with no handler:
    2-3% of a product page's CPU, for nothing."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog is None:
            return
        super().access(resp, req, environ, request_time)


logger_class = QuietAccessLogger
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = gunicorn_logconfig(loglevel.upper(), access_log=accesslog is not None)
# gunicorn >= 25 opens a control socket in $HOME by default: the container user has no home,
# and two servers on one machine would fight over the same path.
control_socket_disable = True
# The app is created in each worker after the fork, so no database connection is shared.
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# /tmp may be a slow or read-only disk in containers; heartbeats go to memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Prometheus multiprocess mode: every worker writes its metrics to files in this directory and
# /metrics adds them up. It must be set before any worker imports prometheus_client, so here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="opply-prometheus-")


def on_starting(server):
    """Refuse a configuration that cannot work before any worker starts; start from empty
    metrics (files left by a previous run would be added up too)."""
    _check_settings(server)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()


def _check_settings(server):
    """The app's settings, read once here so a mistake stops the master with one clear line
    instead of every worker failing to boot. Abuse limits counted in each worker's memory
    let ``workers`` times the limit through: production refuses that; elsewhere, a warning."""
    from opply.entrypoints.config import ConfigError, Settings, per_process_limits_problem

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        server.log.error("cannot start: %s", error)
        raise SystemExit(1) from None
    problem = per_process_limits_problem(settings, server.cfg.workers)
    if problem and settings.is_production:
        server.log.error("cannot start: %s", problem)
        raise SystemExit(1)
    if problem:
        server.log.warning("rate limits are per worker: %s", problem)


def child_exit(server, worker):
    """A dead worker's live gauges stop counting; its counters and histograms are kept."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory we created ourselves."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(directory).name.startswith("opply-prometheus-"):
        shutil.rmtree(directory, ignore_errors=True)
