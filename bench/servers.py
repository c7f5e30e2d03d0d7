"""The servers under load: the service and the bare app, each in gunicorn with the project's
``gunicorn.conf.py`` and the same workers; and the few HTTP calls the bench makes itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset import PASSWORD
from knobs import BENCH, BIN, ROOT, Knobs

SERVICE_APP = "opply.entrypoints.wsgi:app"
BARE_APP = "bare_app:create_app()"
EVENTS_OFF_APP = "events_off:create_app()"  # the service with order events off


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(knobs: Knobs, database_url: str, secret_key: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OPPLY_ENV="production",
        SECRET_KEY=secret_key,
        SELLER_NAME="Opply Bench GmbH",  # production refuses to start without the seller
        SELLER_ADDRESS="Musterstraße 1\\n10115 Berlin",
        SELLER_VAT_ID="DE000000000",
        DATABASE_URL=database_url,
        LOG_LEVEL="INFO",
        WEB_CONCURRENCY=str(knobs.workers),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        # The limiter stays on (its cost is measured), counting in Redis as production must
        # with several workers, but must not refuse a load test's logins.
        RATELIMIT_STORAGE_URI=os.environ.get(
            "BENCH_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/14"
        ),
        LOGIN_RATE_LIMIT="1000000/minute",
        LOGIN_ADDRESS_RATE_LIMIT="1000000/minute",
    )
    return env


def start(
    knobs: Knobs, name: str, app: str, database_url: str, secret_key: str, workdir: Path
) -> Server:
    """gunicorn serving ``app`` on a free port, returned once every worker is up."""
    port = free_port()
    log = workdir / f"{name}.log"
    command = [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py")]
    command += ["--worker-class", knobs.worker_class, "--threads", str(knobs.threads)]
    command += ["--pythonpath", str(BENCH), app]
    env = _environment(knobs, database_url, secret_key, port)
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: gunicorn exited, see {log}\n{log.read_text()[-3000:]}")
        if answers(f"{server.base}/healthz") and len(server.worker_pids()) == knobs.workers:
            return server
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name}: gunicorn did not answer in 30 s, see {log}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def http(
    base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, dict(e.headers), json.loads(raw) if raw else None


def log_in(base: str, username: str) -> str:
    """An access token; a refused login is retried once its rate limit says it may be."""
    for _ in range(3):
        body = {"username": username, "password": PASSWORD}
        status, headers, answer = http(base, "POST", "/api/token/", body)
        if status == 200:
            return str(answer["access"])
        if status != 429:
            break
        time.sleep(min(60, int(headers.get("Retry-After", "5"))))
    raise SystemExit(f"login of {username} failed: {status} {answer}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
