"""Many processes, one truth: real gunicorn with 4 workers over the test PostgreSQL database,
hammered over HTTP from a thread pool. The books must balance, and nothing may answer 5xx.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from opply.adapters.orm import order_lines, orders, products
from opply.domain.model import OrderStatus
from opply.entrypoints.config import EXAMPLE_SELLER
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container
from tests.integration.servers import child_pids, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
SECRET_KEY = secrets.token_urlsafe(48)  # made per run: no key in the repository is usable
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    logs: tuple[Path, Path]  # stderr, stdout

    def log(self, tail: int = 8000) -> str:
        """gunicorn's stderr, and its stdout (the JSON logs) without the routine INFO lines."""
        stderr, stdout = (p.read_text(errors="replace") if p.exists() else "" for p in self.logs)
        notable = "\n".join(ln for ln in stdout.splitlines() if '"level": "INFO"' not in ln)
        return (
            f"--- gunicorn stderr ---\n{stderr[-tail:]}\n"
            f"--- gunicorn stdout, beyond INFO ---\n{notable[-tail:]}"
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - a loopback http URL built by the test
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                return Answer(resp.status, dict(resp.headers), json.loads(resp.read() or b"null"))
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return Answer(err.code, dict(err.headers), parsed)


@pytest.fixture
def database(postgres_database: Database) -> Database:
    """PostgreSQL only (skipped with the conftest's message when TEST_DATABASE_URL is unset)."""
    return postgres_database


@contextmanager
def _serve(database: Database, tmp_path: Path, **extra_env: str) -> Iterator[Server]:
    """gunicorn with ``WORKERS`` workers on ``database``, stopped (SIGTERM) at the end."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "SECRET_KEY": SECRET_KEY,
        "OPPLY_ENV": "test",
        "WEB_CONCURRENCY": str(WORKERS),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **EXAMPLE_SELLER,  # production refuses to start without the seller's details
        **extra_env,
    }
    stdout_path, stderr_path = tmp_path / "gunicorn.stdout", tmp_path / "gunicorn.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [
                str(gunicorn),
                "--config",
                str(REPO_ROOT / "gunicorn.conf.py"),
                "-w",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{port}",
                "opply.entrypoints.wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
    srv = Server(f"http://127.0.0.1:{port}", process, (stderr_path, stdout_path))
    try:
        _wait_until_serving(srv)
        yield srv
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(
    postgres_database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One gunicorn for the module; each test's ``committed_db`` empties the tables after it."""
    with _serve(postgres_database, tmp_path_factory.mktemp("gunicorn")) as srv:
        yield srv


def _wait_until_serving(srv: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if srv.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {srv.process.returncode}\n{srv.log()}")
        try:
            healthy = srv.request("GET", "/healthz").status == 200
        except OSError:
            healthy = False
        if healthy and len(child_pids(srv.process.pid)) >= WORKERS:
            return
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not serve /healthz with {WORKERS} workers in time\n{srv.log()}")


def _login(srv: Server, username: str) -> dict[str, str]:
    answer = srv.request("POST", "/api/token/", {"username": username, "password": f.PASSWORD})
    assert answer.status == 200, f"{answer}\n{srv.log()}"
    return {"Authorization": f"Bearer {answer.body['access']}"}


def _books(database: Database, product_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per product: (stock now, units in placed orders)."""
    with database.engine.connect() as conn:
        stock = dict(
            conn.execute(
                select(products.c.id, products.c.quantity_in_stock).where(
                    products.c.id.in_(product_ids)
                )
            ).all()
        )
        sold = dict(
            conn.execute(
                select(order_lines.c.product_id, func.sum(order_lines.c.quantity))
                .join(orders, orders.c.id == order_lines.c.order_id)
                .where(orders.c.status == OrderStatus.PLACED.value)
                .where(order_lines.c.product_id.in_(product_ids))
                .group_by(order_lines.c.product_id)
            ).all()
        )
    return {pid: (stock[pid], int(sold.get(pid, 0))) for pid in product_ids}


def _orders_in_db(database: Database) -> int:
    with database.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(orders)) or 0


def test_four_gunicorn_workers_under_a_storm_of_orders_keep_the_books_balanced(
    server: Server, committed_db: Database
) -> None:
    container: Container = build_test_container(committed_db)
    initial = {f.product(container.uow(), stock=60).id: 60 for _ in range(5)}
    product_ids = sorted(initial)
    customers = [_login(server, f.user(container).username) for _ in range(6)]

    rng = random.Random(20261124)  # the same storm every run
    storm = []
    for i in range(300):
        lines = rng.sample(product_ids, rng.randint(1, 3))  # random order: locks must not cross
        body = f.order_body(*[(pid, rng.randint(1, 3)) for pid in lines])
        storm.append(partial(server.request, "POST", "/api/v1/orders/", body, customers[i % 6]))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda call: call(), storm))
    elapsed = time.monotonic() - started

    statuses = Counter(a.status for a in answers)
    failures = [a for a in answers if a.status >= 500 or a.status not in (201, 409)]
    assert not failures, f"{statuses} {failures[:3]}\n{server.log()}"
    assert statuses[201] > 0, statuses  # the storm did sell something...
    assert statuses[409] > 0, statuses  # ...and ran the shelves dry
    assert {a.body["code"] for a in answers if a.status == 409} == {"out_of_stock"}
    assert statuses[201] == _orders_in_db(committed_db)

    books = _books(committed_db, product_ids)
    for pid, (stock, sold) in books.items():
        assert stock >= 0
        assert stock + sold == initial[pid], (pid, stock, sold)
    sold_per_answers: dict[int, int] = defaultdict(int)
    for a in answers:
        if a.status == 201:
            for line in a.body["lines"]:
                sold_per_answers[line["product_id"]] += line["quantity"]
    assert {pid: sold for pid, (_, sold) in books.items() if sold} == dict(sold_per_answers)
    assert elapsed < 40, f"300 orders took {elapsed:.1f}s"


def test_one_idempotency_key_sent_to_several_gunicorn_workers_places_one_order(
    server: Server, committed_db: Database
) -> None:
    container: Container = build_test_container(committed_db)
    product = f.product(container.uow(), stock=10)
    headers = {**_login(server, f.user(container).username), "Idempotency-Key": "train-tunnel-7"}
    body = f.order_body((product.id, 3))
    calls = 8
    barrier = threading.Barrier(calls, timeout=30)

    def retry() -> Answer:
        barrier.wait()
        return server.request("POST", "/api/v1/orders/", body, headers)

    with ThreadPoolExecutor(max_workers=calls) as pool:
        answers = [future.result() for future in [pool.submit(retry) for _ in range(calls)]]

    assert [a.status for a in answers] == [201] * calls, f"{answers}\n{server.log()}"
    assert len({a.body["id"] for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * (
        calls - 1
    )
    assert _orders_in_db(committed_db) == 1
    assert _books(committed_db, [product.id]) == {product.id: (7, 3)}


def test_four_workers_on_redis_share_the_login_limit_the_11th_attempt_is_a_429(
    postgres_database: Database, committed_db: Database, tmp_path: Path
) -> None:
    """Counted in Redis, the limit of 10 a minute per username holds whichever of the 4 workers
    takes each attempt (in each worker's memory it let 28 through)."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL (a Redis the test may write to); .ci/run sets it")
    username = f"limited-{secrets.token_hex(4)}"  # fresh counts, whatever Redis holds
    f.user(build_test_container(committed_db), username=username)
    with _serve(
        postgres_database,
        tmp_path,
        RATELIMIT_STORAGE_URI=redis_url,
        LOGIN_ADDRESS_RATE_LIMIT="1000/minute",  # only the per-username limit is under test
    ) as srv:
        wrong = {"username": username, "password": "not-the-password"}
        # All at once, so that every worker takes some (one after the other, one worker tends
        # to take them all, and per-process counting would pass unnoticed).
        with ThreadPoolExecutor(max_workers=11) as pool:
            answers = list(pool.map(lambda _: srv.request("POST", "/api/token/", wrong), range(11)))
        workers = len(child_pids(srv.process.pid))
    assert sorted(a.status for a in answers) == [401] * 10 + [429], answers
    refused = next(a for a in answers if a.status == 429)
    assert refused.body["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert workers == WORKERS
