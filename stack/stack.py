"""The service as it runs in production, on this machine and without Docker.

    PostgreSQL (:5432) <- PgBouncer (:6432, transaction pooling) <- two app instances (gunicorn,
    :8001 and :8002, production settings, limits counted in Redis) <- HAProxy (:8080)
                                                                 <- two webhook workers

Everything listens on loopback. ``up`` installs HAProxy and PgBouncer with apt when they are
missing, creates the database, migrates it, starts what is not running yet and returns once
``http://127.0.0.1:8080/readyz`` answers 200; it can be run again at any time (it starts only what
is missing and reloads HAProxy when its configuration changed). ``down`` stops exactly the
processes ``up`` started (their PIDs are in ``.stack/pids``), ``restart`` restarts the instances
one at a time without failing a request, ``status`` shows what runs.

Settings (environment): ``STACK_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/stack``), ``STACK_REDIS_URL`` (default
``redis://127.0.0.1:6379/13``), ``STACK_WORKERS`` (gunicorn workers per instance, default 2),
``STACK_DB_POOL_SIZE`` and ``STACK_DB_MAX_OVERFLOW`` (per worker and per engine; default 2 and 2),
``STACK_LOG_LEVEL`` (the instances', default WARNING).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from stat import S_ISDIR
from urllib.parse import SplitResult, unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".stack"
PIDS = STATE / "pids"
LOGS = STATE / "logs"
SECRET_KEY_FILE = STATE / "secret_key"
HAPROXY_TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg"
HAPROXY_CFG = STATE / "haproxy.cfg"
HAPROXY_SOCKET = STATE / "haproxy.sock"
BIN = Path(sys.executable).parent  # the virtualenv this script runs in holds gunicorn and opply

HOST = "127.0.0.1"
LB_PORT = 8080
PGBOUNCER_PORT = 6432
INSTANCES = {"app1": 8001, "app2": 8002}
BACKEND = "app"  # HAProxy's backend; its servers are named like the instances
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/stack"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
# Debian's packages: their own services use these configuration files.
DEBIAN_SERVICES = {"pgbouncer": "/etc/pgbouncer/", "haproxy": "/etc/haproxy/"}
GRACEFUL_STOP_SECONDS = 30.0  # longer than gunicorn's graceful timeout (20 s)


class StackError(RuntimeError):
    """The stack cannot be brought into the asked state; the message says why."""


def say(message: str) -> None:
    print(f"stack: {message}", flush=True)


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> Database:
        parts: SplitResult = urlsplit(url)
        if not parts.scheme.startswith("postgresql"):
            raise StackError(f"STACK_DATABASE_URL must be a postgresql:// URL, got {url!r}")
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise StackError(f"STACK_DATABASE_URL names no database: {url!r}")
        return cls(
            host=parts.hostname or HOST,
            port=parts.port or 5432,
            name=name,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )

    def sqlalchemy_url(self, *, host: str | None = None, port: int | None = None) -> str:
        secret = f":{self.password}" if self.password else ""
        return (
            f"postgresql+psycopg2://{self.user}{secret}@{host or self.host}:{port or self.port}"
            f"/{self.name}"
        )


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise StackError(f"{name} must be a whole number, got {raw!r}") from error


def database() -> Database:
    return Database.from_url(os.environ.get("STACK_DATABASE_URL") or DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("STACK_REDIS_URL") or DEFAULT_REDIS_URL


# --- the processes we started -------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """A process this script started: its PID, and enough to tell it from a later process
    that got the same PID (its start time in clock ticks since boot, and its program)."""

    pid: int
    start_ticks: int
    program: str

    def alive(self) -> bool:
        """True while the process is still the one we started (not a zombie, not a reuse)."""
        stat = _proc_stat(self.pid)
        if stat is None or stat.state == "Z":
            return False
        return stat.start_ticks == self.start_ticks and stat.program == self.program


@dataclass(frozen=True)
class ProcStat:
    program: str  # the kernel's name for it: the executed file's name (a script's, not python)
    state: str
    start_ticks: int


def _proc_stat(pid: int) -> ProcStat | None:
    """What ``/proc/<pid>/stat`` says, or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may hold spaces: the other fields follow the last ')'.
    head, tail = raw.rsplit(")", 1)
    fields = tail.split()
    return ProcStat(program=head.split("(", 1)[1], state=fields[0], start_ticks=int(fields[19]))


def _program_of(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat.program if stat is not None else ""


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def load_started() -> dict[str, Started]:
    if not PIDS.exists():
        return {}
    raw: dict[str, dict[str, object]] = json.loads(PIDS.read_text())
    found: dict[str, Started] = {}
    for name, fields in raw.items():
        pid, ticks, program = fields["pid"], fields["start_ticks"], fields["program"]
        if isinstance(pid, int) and isinstance(ticks, int) and isinstance(program, str):
            found[name] = Started(pid=pid, start_ticks=ticks, program=program)
    return found


def save_started(started: Mapping[str, Started]) -> None:
    STATE.mkdir(exist_ok=True)
    if not started:
        PIDS.unlink(missing_ok=True)
        return
    _write_atomically(PIDS, json.dumps({k: asdict(v) for k, v in started.items()}, indent=2))


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def launch(
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str],
    user: str | None = None,
    cwd: Path = REPO,
) -> Started:
    """Start ``argv`` in its own session (so its process group holds it and its children, and
    a terminal's Ctrl-C does not reach it), logging to ``.stack/logs/<name>.log``."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{name}.log").open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
        )
    # Popen returns once the program is executing: the kernel has already named the process
    # after it (the name is set before the exec reports success).
    stat = _proc_stat(process.pid)
    if stat is None or process.poll() is not None:
        raise StackError(f"{name} did not start:\n{log_tail(name)}")
    return Started(pid=process.pid, start_ticks=stat.start_ticks, program=stat.program)


def log_tail(name: str, lines: int = 15) -> str:
    path = LOGS / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop(name: str, process: Started, sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask ``process`` to stop, wait for it, and kill its process group if it will not go.
    Nothing happens to a PID that is no longer the process we started."""
    if not process.alive():
        return
    os.kill(process.pid, sig)
    if _wait(lambda: not process.alive(), GRACEFUL_STOP_SECONDS):
        return
    say(f"{name} (pid {process.pid}) did not stop within {GRACEFUL_STOP_SECONDS:.0f} s: killing")
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            # It was started as the leader of its own session, so its group is its PID.
            os.killpg(process.pid, signal.SIGKILL)
    _wait(lambda: not process.alive(), 5.0)


def _wait(condition: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


# --- ports --------------------------------------------------------------------------------------


def listener(port: int) -> tuple[int, str] | None:
    """The PID and command line of the process listening on ``port`` on loopback, if any
    (PID 0 when the socket belongs to a process we may not see)."""
    result = subprocess.run(
        ["ss", "-H", "-ltnp", f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    if not lines:
        return None
    match = re.search(r"pid=(\d+)", lines[0])
    if match is None:
        return (0, lines[0].strip())
    pid = int(match.group(1))
    return (pid, _cmdline(pid))


def free_port(port: int, service: str) -> None:
    """Make sure ``port`` is free for our ``service``. Debian's own service of the same program
    (started when the package was installed) is stopped and disabled; any other process is
    reported, never killed."""
    holder = listener(port)
    if holder is None:
        return
    pid, command = holder
    debian_config = DEBIAN_SERVICES.get(service)
    if (
        pid
        and debian_config
        and _program_of(pid) == service
        and (debian_config in command or "-f" not in command)
    ):
        say(f"Debian's own {service} service holds port {port}: stopping and disabling it")
        _stop_debian_service(service)
        if _wait(lambda: listener(port) is None, 10.0):
            return
    raise StackError(
        f"port {port} (for {service}) is in use by pid {pid or '?'}: {command}\n"
        "stop that process yourself (this script stops only what it started)"
    )


def _stop_debian_service(service: str) -> None:
    if Path("/run/systemd/system").is_dir():
        commands = [["systemctl", "disable", "--now", service]]
    else:
        commands = [["service", service, "stop"], ["update-rc.d", service, "disable"]]
    for command in commands:
        subprocess.run(command, check=False, capture_output=True)


def accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def http_status(port: int, path: str, timeout: float = 3.0) -> int | None:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


# --- packages -----------------------------------------------------------------------------------


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise StackError(f"{name} is not installed")
    return path


def install_missing() -> None:
    missing = [
        package
        for package in ("haproxy", "pgbouncer")
        if not (shutil.which(package) or shutil.which(package, path="/usr/sbin:/sbin"))
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(f"{', '.join(missing)} missing: run `sudo apt-get install {missing}`")
    say(f"installing {', '.join(missing)} with apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


# --- PostgreSQL and migrations ------------------------------------------------------------------


def create_database(db: Database) -> None:
    import psycopg2
    from psycopg2 import sql

    try:
        connection = psycopg2.connect(
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password or None,
            dbname="postgres",
            connect_timeout=5,
        )
    except psycopg2.OperationalError as error:
        raise StackError(f"PostgreSQL at {db.host}:{db.port} does not answer: {error}") from error
    try:
        connection.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,))
            if cursor.fetchone() is None:
                say(f"creating database {db.name}")
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.name)))
    finally:
        connection.close()


def migrate(db: Database, secret_key: str) -> None:
    """Migrations go straight to PostgreSQL, never through PgBouncer.

    In transaction pooling each transaction may run on another server connection, and session
    state does not survive between them. A migration is where session semantics are wanted: it
    holds an advisory lock and runs DDL over many statements, a later migration may need a
    statement that refuses to run inside a transaction (``CREATE INDEX CONCURRENTLY``) or a
    session setting (``SET lock_timeout``), and it must not wait in the pool's queue behind
    live traffic, nor hold one of its few server connections for minutes.
    """
    env = app_environment(secret_key, database_url=db.sqlalchemy_url())
    result = subprocess.run(
        [str(BIN / "opply"), "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"migration failed:\n{result.stdout}{result.stderr}")
    say(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "migrated")


def secret_key() -> str:
    """One key for every instance (a token signed by one is verified by the other), made once."""
    STATE.mkdir(exist_ok=True)
    if not SECRET_KEY_FILE.exists():
        _write_atomically(SECRET_KEY_FILE, secrets.token_urlsafe(48), mode=0o600)
    return SECRET_KEY_FILE.read_text().strip()


# --- Redis --------------------------------------------------------------------------------------


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(started: dict[str, Started]) -> None:
    parts = urlsplit(redis_url())
    host, port = parts.hostname or HOST, parts.port or 6379
    if redis_answers(host, port):
        return
    if host not in (HOST, "localhost"):
        raise StackError(f"Redis at {host}:{port} does not answer")
    free_port(port, "redis-server")
    if shutil.which("redis-server") is None:
        if os.geteuid() != 0:
            raise StackError("redis-server is missing: run `sudo apt-get install redis-server`")
        say("installing redis-server with apt")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], env=env, check=True)
        if redis_answers(host, port):  # the package's own service took the port
            return
    argv = [program("redis-server"), "--bind", HOST, "--port", str(port)]
    argv += ["--save", "", "--appendonly", "no"]
    started["redis"] = launch("redis", argv, env=_base_env())
    save_started(started)
    if not _wait(lambda: redis_answers(host, port), 10.0):
        raise StackError(f"Redis did not start:\n{log_tail('redis')}")
    say(f"Redis on {host}:{port}")


# --- PgBouncer ----------------------------------------------------------------------------------


def pgbouncer_user() -> str | None:
    """PgBouncer refuses to run as root; as root we run it as the database's system user."""
    return "postgres" if os.geteuid() == 0 else None


def pgbouncer_dir() -> Path:
    """Where PgBouncer's files go: ``.stack/pgbouncer``, unless PgBouncer runs as another user
    (as root) who may not reach into the checkout (a clone under /root or in a ``mktemp -d``
    folder is mode 700: a fresh clone's first stack-up failed so). Then a folder under /tmp
    that only that user owns, one per checkout."""
    user = pgbouncer_user()
    if user is None:
        return STATE / "pgbouncer"
    digest = hashlib.sha256(str(STATE).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"opply-stack-{digest}-pgbouncer"


def _own_folder_for(user: str, folder: Path) -> None:
    """``folder`` made (mode 700) and given to ``user``; refused if someone else made it first."""
    account = pwd.getpwnam(user)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=False)
    info = folder.lstat()
    if not S_ISDIR(info.st_mode) or info.st_uid not in (0, account.pw_uid):
        raise StackError(f"{folder} exists and is not ours: remove it")
    os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)


def pgbouncer_files(db: Database) -> dict[str, str]:
    target = f"host={db.host} port={db.port} dbname={db.name} user={db.user}"
    if db.password:
        target += f" password={db.password}"
    ini = f"""\
; Written by stack/stack.py; edits are overwritten by the next `make stack-up`.
[databases]
{db.name} = {target}

[pgbouncer]
listen_addr = {HOST}
listen_port = {PGBOUNCER_PORT}
unix_socket_dir =
; Loopback only, as on the machine's PostgreSQL: the user must be listed in auth_file.
auth_type = trust
auth_file = {pgbouncer_dir() / "userlist.txt"}
admin_users = {db.user}
stats_users = {db.user}
; A server connection serves one transaction, then goes back to the pool: no session state
; (SET, advisory locks, prepared statements, temporary tables, LISTEN) may outlive a transaction.
pool_mode = transaction
default_pool_size = 10
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = 20
server_idle_timeout = 60
log_connections = 0
log_disconnections = 0
stats_period = 60
"""
    users = f'"{db.user}" ""\n'
    return {"pgbouncer.ini": ini, "userlist.txt": users}


def ensure_pgbouncer(db: Database, started: dict[str, Started]) -> None:
    folder, user = pgbouncer_dir(), pgbouncer_user()
    if user is None:
        folder.mkdir(parents=True, exist_ok=True)
    else:
        _own_folder_for(user, folder)
    changed = False
    for name, text in pgbouncer_files(db).items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            _write_atomically(path, text, mode=0o600)
            if user is not None:
                account = pwd.getpwnam(user)
                os.chown(path, account.pw_uid, account.pw_gid)
            changed = True
    current = started.get("pgbouncer")
    if current is not None and current.alive():
        if changed:
            say("PgBouncer's configuration changed: reloading it")
            os.kill(current.pid, signal.SIGHUP)
        return
    free_port(PGBOUNCER_PORT, "pgbouncer")
    argv = [program("pgbouncer"), str(folder / "pgbouncer.ini")]
    started["pgbouncer"] = launch("pgbouncer", argv, env=_base_env(), user=pgbouncer_user())
    save_started(started)
    if not _wait(lambda: accepts(PGBOUNCER_PORT), 10.0):
        raise StackError(f"PgBouncer did not start:\n{log_tail('pgbouncer')}")
    say(f"PgBouncer on {HOST}:{PGBOUNCER_PORT} (transaction pooling) -> {db.host}:{db.port}")


# --- the app instances --------------------------------------------------------------------------


def _base_env() -> dict[str, str]:
    """A clean environment: nothing from the caller's shell leaks into a server."""
    return {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


def app_environment(secret: str, *, database_url: str) -> dict[str, str]:
    """Production settings, as an instance on AWS gets them (docs/deployment.md)."""
    return {
        **_base_env(),
        "OPPLY_ENV": "production",
        "SECRET_KEY": secret,
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": redis_url(),
        # HAProxy is the one proxy in front: its X-Forwarded-For/-Proto are believed.
        "TRUSTED_PROXY_HOPS": "1",
        # The settings come from here alone, never from a .env file in the working directory.
        "PYTHON_DOTENV_DISABLED": "1",
        "LOG_LEVEL": os.environ.get("STACK_LOG_LEVEL", "WARNING"),
        "WEB_CONCURRENCY": str(_int_setting("STACK_WORKERS", 2)),
        "DB_POOL_SIZE": str(_int_setting("STACK_DB_POOL_SIZE", 2)),
        "DB_MAX_OVERFLOW": str(_int_setting("STACK_DB_MAX_OVERFLOW", 2)),
        # Production refuses to start without the seller every invoice names.
        "SELLER_NAME": "Opply Stack Ltd",
        "SELLER_ADDRESS": "1 Loopback Lane\\nLondon",
        "SELLER_VAT_ID": "GB000000000",
    }


def instance_environment(name: str, port: int, secret: str, db: Database) -> dict[str, str]:
    home = STATE / "instances" / name
    (home / "metrics").mkdir(parents=True, exist_ok=True)
    return {
        **app_environment(secret, database_url=db.sqlalchemy_url(host=HOST, port=PGBOUNCER_PORT)),
        "GUNICORN_BIND": f"{HOST}:{port}",
        "FORWARDED_ALLOW_IPS": HOST,
        "OPPLY_INSTANCE_DIR": str(home),
        "PROMETHEUS_MULTIPROC_DIR": str(home / "metrics"),
    }


def start_instance(name: str, started: dict[str, Started], secret: str, db: Database) -> None:
    port = INSTANCES[name]
    free_port(port, "gunicorn")
    argv = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "opply.entrypoints.wsgi:app"]
    started[name] = launch(name, argv, env=instance_environment(name, port, secret, db))
    save_started(started)
    wait_ready(name, started[name])


def wait_ready(name: str, process: Started, timeout: float = 60.0) -> None:
    port = INSTANCES[name]

    def ready() -> bool:
        if not process.alive():
            raise StackError(f"{name} exited while starting:\n{log_tail(name)}")
        return http_status(port, "/readyz") == 200

    if not _wait(ready, timeout, every=0.2):
        raise StackError(f"{name} is not ready after {timeout:.0f} s:\n{log_tail(name)}")


# --- the webhook workers ------------------------------------------------------------------------

WEBHOOK_WORKERS = ("worker1", "worker2")


def worker_environment(secret: str, db: Database) -> dict[str, str]:
    """An instance's settings; receivers may be on loopback here (everything is)."""
    return {
        **app_environment(secret, database_url=db.sqlalchemy_url(host=HOST, port=PGBOUNCER_PORT)),
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }


def ensure_workers(started: dict[str, Started], secret: str, db: Database) -> None:
    """`opply worker` beside the instances, through PgBouncer like them."""
    for name in WEBHOOK_WORKERS:
        current = started.get(name)
        if current is None or not current.alive():
            argv = [str(BIN / "opply"), "worker"]
            started[name] = launch(name, argv, env=worker_environment(secret, db))
            save_started(started)
            say(f"{name}: opply worker (pid {started[name].pid})")


# --- HAProxy ------------------------------------------------------------------------------------


def haproxy_config() -> str:
    servers = "\n".join(
        f"    server {name} {HOST}:{port}" for name, port in sorted(INSTANCES.items())
    )
    run_as = ""
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            pwd.getpwnam("haproxy")
            run_as = "    user haproxy\n    group haproxy\n"
    return string.Template(HAPROXY_TEMPLATE.read_text()).substitute(
        socket=str(HAPROXY_SOCKET), bind=f"{HOST}:{LB_PORT}", run_as=run_as, servers=servers
    )


def check_haproxy_config(path: Path) -> None:
    result = subprocess.run(
        [program("haproxy"), "-c", "-q", "-f", str(path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise StackError(f"HAProxy refuses {path}:\n{result.stdout}{result.stderr}")


def ensure_haproxy(started: dict[str, Started]) -> None:
    text = haproxy_config()
    changed = not HAPROXY_CFG.exists() or HAPROXY_CFG.read_text() != text
    if changed:
        candidate = STATE / "haproxy.cfg.new"
        candidate.write_text(text)
        check_haproxy_config(candidate)
        os.replace(candidate, HAPROXY_CFG)
    current = started.get("haproxy")
    if current is not None and current.alive():
        if changed:
            say("HAProxy's configuration changed: reloading it")
            os.kill(current.pid, signal.SIGUSR2)  # the master re-reads it; connections carry on
            time.sleep(1.0)
        return
    free_port(LB_PORT, "haproxy")
    HAPROXY_SOCKET.unlink(missing_ok=True)
    argv = [program("haproxy"), "-W", "-f", str(HAPROXY_CFG)]  # master-worker, foreground
    started["haproxy"] = launch("haproxy", argv, env=_base_env())
    save_started(started)


def haproxy_command(command: str) -> str:
    """One command on HAProxy's runtime API."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5.0)
        conn.connect(str(HAPROXY_SOCKET))
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def haproxy_stats() -> dict[str, dict[str, str]]:
    """``show stat`` of the app backend: one row per server and one named BACKEND."""
    lines = haproxy_command("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        if not line:
            continue
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == BACKEND:
            rows[row["svname"]] = row
    return rows


def server_status(name: str) -> str:
    return haproxy_stats().get(name, {}).get("status", "?")


def wait_server(name: str, wanted: Callable[[dict[str, str]], bool], timeout: float) -> None:
    if not _wait(lambda: wanted(haproxy_stats().get(name, {})), timeout, every=0.1):
        row = haproxy_stats().get(name, {})
        raise StackError(
            f"HAProxy: {name} is {row.get('status')} with {row.get('scur')} sessions "
            f"after {timeout:.0f} s"
        )


# --- the commands -------------------------------------------------------------------------------


def up() -> None:
    began = time.monotonic()
    install_missing()
    STATE.mkdir(exist_ok=True)
    started = load_started()
    # Every port first, so that a port held by another program stops us before anything starts.
    ports = {"pgbouncer": (PGBOUNCER_PORT, "pgbouncer"), "haproxy": (LB_PORT, "haproxy")}
    ports |= {name: (port, "gunicorn") for name, port in INSTANCES.items()}
    for name, (port, service) in ports.items():
        current = started.get(name)
        if current is None or not current.alive():
            free_port(port, service)
    db = database()
    secret = secret_key()
    create_database(db)
    migrate(db, secret)
    ensure_redis(started)
    ensure_pgbouncer(db, started)
    for name in sorted(INSTANCES):
        current = started.get(name)
        if current is None or not current.alive():
            start_instance(name, started, secret, db)
            say(f"{name} on http://{HOST}:{INSTANCES[name]}")
    ensure_workers(started, secret, db)
    ensure_haproxy(started)
    if not _wait(lambda: http_status(LB_PORT, "/readyz") == 200, 30.0, every=0.2):
        raise StackError(f"http://{HOST}:{LB_PORT}/readyz is not 200:\n{log_tail('haproxy')}")
    for name in INSTANCES:
        # A restart that failed half-way may have left one drained.
        haproxy_command(f"set server {BACKEND}/{name} state ready")
        wait_server(name, lambda row: row.get("status") == "UP", 15.0)
    say(f"up in {time.monotonic() - began:.1f} s")
    print(
        f"""
  API (through HAProxy)  http://{HOST}:{LB_PORT}/api/v1/products/
  API docs               http://{HOST}:{LB_PORT}/docs/
  instances              {", ".join(f"http://{HOST}:{p}" for p in INSTANCES.values())}
  PgBouncer              postgresql://{db.user}@{HOST}:{PGBOUNCER_PORT}/{db.name}
  PostgreSQL             {db.sqlalchemy_url()}
  logs, PIDs             {STATE}/""",
        flush=True,
    )


def down() -> None:
    started = load_started()
    if not started:
        say("nothing to stop")
        return
    # The front first, so no request reaches an instance that is going away.
    for name in (
        "haproxy",
        *sorted(INSTANCES, reverse=True),
        *WEBHOOK_WORKERS,
        "pgbouncer",
        "redis",
    ):
        process = started.pop(name, None)
        if process is None:
            continue
        if process.alive():
            stop(name, process)
            say(f"stopped {name} (pid {process.pid})")
        else:
            say(f"{name} (pid {process.pid}) was no longer running")
        save_started(started)
    for name, process in started.items():  # anything else recorded: stop it too
        stop(name, process)
    save_started({})
    HAPROXY_SOCKET.unlink(missing_ok=True)


def restart() -> None:
    """Restart the instances one at a time without failing a request: HAProxy stops sending
    new requests to one (drain), it finishes what it has, stops gracefully (SIGTERM: gunicorn
    lets running requests end), starts again, and gets traffic once ready and seen UP."""
    started = load_started()
    haproxy = started.get("haproxy")
    if haproxy is None or not haproxy.alive():
        raise StackError("HAProxy is not running: `make stack-up` first")
    secret, db = secret_key(), database()
    for name in sorted(INSTANCES):
        began = time.monotonic()
        haproxy_command(f"set server {BACKEND}/{name} state drain")
        wait_server(name, lambda row: row.get("scur") == "0", GRACEFUL_STOP_SECONDS)
        drained = time.monotonic()
        current = started.get(name)
        if current is not None:
            stop(name, current)
        stopped = time.monotonic()
        start_instance(name, started, secret, db)
        ready = time.monotonic()
        haproxy_command(f"set server {BACKEND}/{name} state ready")
        wait_server(name, lambda row: row.get("status") == "UP", 15.0)
        say(
            f"restarted {name} (pid {started[name].pid}) in {time.monotonic() - began:.1f} s: "
            f"drained {drained - began:.1f} s, stopped {stopped - drained:.1f} s, "
            f"ready {ready - stopped:.1f} s, UP {time.monotonic() - ready:.1f} s"
        )


def status() -> None:
    started = load_started()
    if not started:
        say("not running (no .stack/pids)")
        return
    for name, process in started.items():
        state = "running" if process.alive() else "GONE"
        say(f"{name:<10} pid {process.pid:<8} {state}")
    haproxy = started.get("haproxy")
    if haproxy is not None and haproxy.alive() and HAPROXY_SOCKET.exists():
        for name, row in sorted(haproxy_stats().items()):
            say(
                f"haproxy {name:<8} {row.get('status', '?'):<8} sessions {row.get('scur')} "
                f"total {row.get('stot')} retries {row.get('wretr')} "
                f"redispatches {row.get('wredis')}"
            )
    readyz = http_status(LB_PORT, "/readyz")
    say(f"http://{HOST}:{LB_PORT}/readyz -> {readyz or 'no answer'}")


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except StackError as error:
        print(f"stack: error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


COMMANDS: dict[str, Callable[[], None]] = {
    "up": up,
    "down": down,
    "restart": restart,
    "status": status,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    with _reported():
        COMMANDS[args.command]()


if __name__ == "__main__":
    main()
