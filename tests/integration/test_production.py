"""The container's start command, proven outside Docker (no engine runs here): the same
entrypoint script migrates a fresh PostgreSQL database and starts gunicorn with gunicorn.conf.py.
Plus the readiness probe following a real PostgreSQL server down and back up, and production's
refusal to start with a weak SECRET_KEY."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opply.entrypoints.app import create_app
from opply.entrypoints.config import ConfigError, Settings
from tests.integration import servers
from tests.integration.conftest import TEST_SECRET, empty_postgres_database
from tests.integration.servers import Cluster, free_port, process_env

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
# The image's CMD, as the entrypoint script receives it.
IMAGE_CMD = ["gunicorn", "--config", "gunicorn.conf.py", "opply.entrypoints.wsgi:app"]
STRONG_SECRET = secrets.token_urlsafe(48)  # made per run: no key in the repository is usable
MIB = 1024 * 1024


@dataclass
class Output:
    """Every line a process writes (stdout and stderr together), collected as it comes."""

    lines: list[str] = field(default_factory=list)

    def follow(self, process: subprocess.Popen[str]) -> threading.Thread:
        def _read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.lines.append(line.rstrip("\n"))

        thread = threading.Thread(target=_read, daemon=True)
        thread.start()
        return thread

    def json_lines(self) -> list[dict[str, object]]:
        out = []
        for line in list(self.lines):
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines[-60:])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated: the start command must do that)."""
    with empty_postgres_database("opply_start") as url:
        yield url


def wait_until_healthy(base: str, process: subprocess.Popen[str], output: Output) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the start command exited with {process.returncode}\n{output}")
        try:
            if get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not answer /healthz within 30 s\n{output}")


def post_chunked(port: int, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    chunks = (body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024))
    connection.request(
        "POST",
        path,
        body=chunks,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


def test_the_image_start_command_migrates_serves_logs_and_counts_requests(
    fresh_postgres_url: str,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL: production with 2 workers shares its limits on Redis")
    env = process_env(
        DATABASE_URL=fresh_postgres_url,
        SECRET_KEY=STRONG_SECRET,
        OPPLY_ENV="production",
        WEB_CONCURRENCY="2",
        RATELIMIT_STORAGE_URI=redis_url,
        PORT=str(port),
    )
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), *IMAGE_CMD],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output()
    reader = output.follow(process)
    try:
        wait_until_healthy(base, process, output)

        ready_status, _, ready_body = get(f"{base}/readyz")
        listed = [get(f"{base}/api/v1/products/", {"X-Request-ID": f"prod-{i}"}) for i in range(6)]
        too_large_status, too_large = post_chunked(port, "/api/token/", b"x" * (MIB + 64 * 1024))
        metrics_status, _, metrics = get(f"{base}/metrics")
        time.sleep(0.3)  # let the reader thread catch the last log lines
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    migrated = next(i for i, line in enumerate(output.lines) if "database at revision" in line)
    serving = next(i for i, line in enumerate(output.lines) if "Starting gunicorn" in line)
    assert migrated < serving, output
    assert ready_status == 200, ready_body
    assert [status for status, _, _ in listed] == [200] * 6
    assert [headers["X-Request-ID"] for _, headers, _ in listed] == [f"prod-{i}" for i in range(6)]
    assert too_large_status == 413
    assert too_large["code"] == "payload_too_large"

    request_lines = {
        line["request_id"]: line
        for line in output.json_lines()
        if line.get("logger") == "opply.request"
    }
    assert request_lines["prod-0"]["path"] == "/api/v1/products/"
    assert request_lines["prod-0"]["status"] == 200
    assert "duration_ms" in request_lines["prod-0"]
    workers = {line["message"] for line in output.json_lines() if "Booting worker" in str(line)}
    assert len(workers) == 2, output

    assert metrics_status == 200
    # Two workers served these; the multiprocess registry adds both up.
    assert (
        'opply_http_requests_total{method="GET",route="/api/v1/products/",status="200"} 6.0'
        in metrics.decode()
    ), metrics.decode()
    assert 'route="/readyz",status="200"} 1.0' in metrics.decode()

    assert exit_code == 0, output
    assert any("Shutting down: Master" in line for line in output.lines), output


def test_production_refuses_to_start_with_a_weak_secret_key(tmp_path: Path) -> None:
    env = process_env(
        OPPLY_ENV="production",
        SECRET_KEY="short",
        DATABASE_URL=f"sqlite:///{tmp_path / 'never.sqlite3'}",
        WEB_CONCURRENCY="1",
        PORT=str(free_port()),
    )
    run = {"cwd": REPO_ROOT, "env": env, "capture_output": True, "text": True, "timeout": 60}

    via_entrypoint = subprocess.run(["sh", str(ENTRYPOINT), *IMAGE_CMD], check=False, **run)
    gunicorn_alone = subprocess.run(IMAGE_CMD, check=False, **run)

    assert via_entrypoint.returncode != 0
    assert "SECRET_KEY is shorter than 32 bytes" in via_entrypoint.stderr
    assert "secrets.token_urlsafe(48)" in via_entrypoint.stderr
    assert "Listening at" not in via_entrypoint.stdout + via_entrypoint.stderr
    assert gunicorn_alone.returncode != 0
    assert "SECRET_KEY is shorter than 32 bytes" in gunicorn_alone.stdout + gunicorn_alone.stderr


# --- /readyz follows a real PostgreSQL server down and up -----------------------------------------


@pytest.fixture
def throwaway_cluster() -> Iterator[Cluster]:
    with servers.throwaway_cluster() as cluster:
        yield cluster


def test_readiness_follows_the_database_down_and_back_up_without_a_restart(
    throwaway_cluster: Cluster,
) -> None:
    settings = Settings(database_url=throwaway_cluster.url, secret_key=TEST_SECRET, env="test")
    app = create_app(settings)
    client = app.test_client()

    assert client.get("/readyz").status_code == 200

    throwaway_cluster.stop()
    while_down = client.get("/readyz")
    health_while_down = client.get("/healthz")

    throwaway_cluster.start()
    after = client.get("/readyz")
    app.extensions["container"].engine().dispose()

    assert while_down.status_code == 503
    assert while_down.get_json()["code"] == "service_unavailable"
    assert health_while_down.status_code == 200
    assert after.status_code == 200


def test_the_app_factory_refuses_production_without_a_strong_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPPLY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never.sqlite3'}")

    with pytest.raises(ConfigError, match="SECRET_KEY is shorter than 32 bytes"):
        create_app()
