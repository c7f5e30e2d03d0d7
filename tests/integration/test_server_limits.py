"""What gunicorn refuses before the app (gunicorn.conf.py's limits) is a problem+json answer with
the code the OpenAPI document lists on every operation, and nothing a client sends reaches them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import TEST_SECRET
from tests.integration.servers import free_port, process_env
from tests.integration.test_production import Output, wait_until_healthy

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """gunicorn as deployed (gunicorn.conf.py), one worker, on SQLite."""
    folder = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = process_env(
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        SECRET_KEY=TEST_SECRET,
        WEB_CONCURRENCY="1",
        OPPLY_INSTANCE_DIR=str(folder),
        GUNICORN_BIND=f"127.0.0.1:{port}",
    )
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "opply", "db", "upgrade"], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [
            bin_dir / "gunicorn",
            "--config",
            str(REPO_ROOT / "gunicorn.conf.py"),
            "opply.entrypoints.wsgi:app",
        ],
        env=env,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output()
    output.follow(process)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, output)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def exchange(port: int, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (a request without a body) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received:
                top, _, body = received.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in top.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
    top, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def request(path: str, *headers: str) -> str:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return "\r\n".join(lines) + "\r\n\r\n"


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert got_status == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["title"]
    assert problem["detail"]


def test_a_request_line_over_the_limit_is_a_414_problem(server: int) -> None:
    answer = exchange(server, request("/api/v1/products/?search=" + "a" * 8200))
    assert_problem(answer, 414, "uri_too_long")


def test_a_header_over_the_limit_is_a_431_problem(server: int) -> None:
    answer = exchange(server, request("/healthz", "X-Big: " + "b" * 17_000))
    assert_problem(answer, 431, "header_fields_too_large")


def test_too_many_headers_are_a_431_problem(server: int) -> None:
    many = [f"X-Header-{i}: {i}" for i in range(101)]
    answer = exchange(server, request("/healthz", *many))
    assert_problem(answer, 431, "header_fields_too_large")


def test_long_urls_and_headers_within_the_limits_reach_the_app(server: int) -> None:
    status, headers, body = exchange(
        server,
        request(
            "/api/v1/products/?page=1&search=" + "%C3%A9" * 1000,  # 6 KB of URL
            "Authorization: Bearer " + "t" * 12_000,
        ),
    )
    # The app's own answer: the search is too long for the schema (a 422 naming it).
    assert status == 422, body
    assert "x-request-id" in headers
    assert json.loads(body)["errors"][0]["field"] == "search"
