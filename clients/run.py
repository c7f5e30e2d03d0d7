"""`make clients-test`: generated clients, as a mobile or web team would make them, against a
live server.

Creates a throwaway PostgreSQL database, migrates it and creates a staff user and one customer
per client with the ``opply`` command, serves the app with gunicorn as deployed (production
settings, one worker, so the rate limits count in this run's memory and start from zero), and
reads the document the server serves. Then: ``redocly lint`` and ``openapi-spec-validator`` on
it; three clients generated from it (openapi-python-client; openapi-typescript with
openapi-fetch; @hey-api/openapi-ts with its Zod validators on); the TypeScript flows type-checked
against what was generated; and the whole mobile flow (``flows/``) through each client. Drops
the database at the end and prints how long each step took.

Node tools come from ``package-lock.json`` (``npm ci``, only when the lock file changed since
the last install). Environment: CLIENTS_DATABASE_URL (an admin URL of the PostgreSQL server;
default TEST_DATABASE_URL's server, else postgres on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
GENERATED = HERE / "generated"
NODE_BIN = HERE / "node_modules" / ".bin"
LOCK_STAMP = HERE / "node_modules" / ".installed-from"
PASSWORD = "clients-test-password-2026"  # noqa: S105 - throwaway users of a throwaway database
CLIENTS = ("python", "openapi-fetch", "hey-api")
DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

timings: list[tuple[str, float]] = []


def say(message: str) -> None:
    print(f"[clients {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    say(f"{name} ...")
    started = time.monotonic()
    yield
    timings.append((name, time.monotonic() - started))


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path = HERE) -> None:
    result = subprocess.run(  # noqa: S603 - our own tools
        [str(part) for part in command], cwd=cwd, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(map(str, command))}")


def admin_url() -> str:
    explicit = os.environ.get("CLIENTS_DATABASE_URL")
    if explicit:
        return explicit
    test_url = os.environ.get("TEST_DATABASE_URL")
    if test_url:
        return make_url(test_url).set(database="postgres").render_as_string(hide_password=False)
    return DEFAULT_ADMIN_URL


@contextmanager
def throwaway_database() -> Iterator[str]:
    base = make_url(admin_url())
    name = f"opply_clients_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_tools() -> None:
    """``npm ci`` when the lock file is not the one node_modules was installed from."""
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()
    if LOCK_STAMP.exists() and LOCK_STAMP.read_text() == lock:
        return
    if shutil.which("npm") is None:
        raise SystemExit("npm is missing: install Node.js 20.19 or newer")
    run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
    LOCK_STAMP.write_text(lock)


def server_env(database_url: str, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPPLY_", "PROMETHEUS_", "GUNICORN_", "RATELIMIT_", "LOGIN_"))
        and key not in ("DATABASE_URL", "SECRET_KEY", "WEB_CONCURRENCY", "PORT", "CORS_ORIGINS")
    }
    env.update(
        OPPLY_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        # The seller every invoice names (production refuses to start without it).
        SELLER_NAME="Opply Clients Test GmbH",
        SELLER_ADDRESS="Musterstraße 1\\n10115 Berlin",
        SELLER_VAT_ID="DE000000000",
        DATABASE_URL=database_url,
        # One worker: the rate limits (production's defaults, on) count in this run's memory,
        # so three flows' logins never meet an earlier run's counts.
        WEB_CONCURRENCY="1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        LOG_LEVEL="WARNING",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


@contextmanager
def live_server(env: dict[str, str], base: str) -> Iterator[None]:
    log = GENERATED / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [BIN / "gunicorn", "--config", ROOT / "gunicorn.conf.py", "opply.entrypoints.wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not get ready in 30 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def generate(document: Path) -> None:
    with step("generate: openapi-python-client"):
        run(
            BIN / "openapi-python-client",
            "generate",
            "--path",
            document,
            "--output-path",
            GENERATED / "python" / "opply_api_client",
            "--meta",
            "none",
            "--overwrite",
            "--config",
            HERE / "openapi-python-client.yaml",
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
    with step("generate: openapi-typescript"):
        run(NODE_BIN / "openapi-typescript", document, "-o", GENERATED / "openapi-typescript.d.ts")
    with step("generate: @hey-api/openapi-ts"):
        run(NODE_BIN / "openapi-ts", "--file", HERE / "openapi-ts.config.ts")


def main() -> int:
    started = time.monotonic()
    with step("npm ci (when the lock file changed)"):
        node_tools()
    shutil.rmtree(GENERATED, ignore_errors=True)
    GENERATED.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with throwaway_database() as database_url:
        env = server_env(database_url, port)
        with step("migrate; create the users (opply CLI)"):
            run(BIN / "opply", "db", "upgrade", env=env)
            users = {"staff": "staff", **{client: f"customer-{client}" for client in CLIENTS}}
            for role, username in users.items():
                staff = ["--staff"] if role == "staff" else []
                run(
                    BIN / "opply",
                    "users",
                    "create",
                    username,
                    *staff,
                    env={**env, "OPPLY_PASSWORD": PASSWORD},
                )
        with ExitStack() as server:
            with step("start gunicorn (production settings, one worker)"):
                server.enter_context(live_server(env, base))
            document = GENERATED / "openapi.json"
            with step("read /openapi.json"):
                with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as answer:  # noqa: S310
                    document.write_bytes(answer.read())
                json.loads(document.read_text())  # it is JSON
            with step("redocly lint"):
                run(NODE_BIN / "redocly", "lint", document, "--config", ROOT / "redocly.yaml")
            with step("openapi-spec-validator"):
                run(BIN / "openapi-spec-validator", document)
            generate(document)
            with step("tsc: the TypeScript flows against the generated types"):
                run(NODE_BIN / "tsc", "--project", HERE / "tsconfig.json")
            flow_env = {
                **os.environ,
                "OPPLY_BASE_URL": base,
                "OPPLY_PASSWORD": PASSWORD,
                "OPPLY_STAFF": users["staff"],
            }
            with step("flow: Python client"):
                run(
                    sys.executable,
                    HERE / "flows" / "python_flow.py",
                    env={
                        **flow_env,
                        "OPPLY_CUSTOMER": users["python"],
                        "PYTHONPATH": str(GENERATED / "python"),
                    },
                )
            with step("flow: openapi-fetch"):
                run(
                    NODE_BIN / "tsx",
                    HERE / "flows" / "openapi_fetch_flow.ts",
                    env={**flow_env, "OPPLY_CUSTOMER": users["openapi-fetch"]},
                )
            with step("flow: @hey-api (Zod validation on)"):
                run(
                    NODE_BIN / "tsx",
                    HERE / "flows" / "hey_api_flow.ts",
                    env={**flow_env, "OPPLY_CUSTOMER": users["hey-api"]},
                )
    say("timings:")
    for name, seconds in timings:
        say(f"  {seconds:6.1f} s  {name}")
    say(f"  {time.monotonic() - started:6.1f} s  in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
