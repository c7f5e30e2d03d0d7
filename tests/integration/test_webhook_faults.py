"""Webhook delivery when things break: real ``opply worker`` processes on PostgreSQL, real
receivers on 127.0.0.1.

- a worker killed with SIGKILL mid-delivery: the event arrives later, with the same webhook-id;
- a receiver down for a while, then up: everything arrives;
- PostgreSQL restarted while deliveries are under way (a cluster of the test's own);
- two workers and 1,000 events to a healthy receiver: each delivered exactly once;
- a slow receiver does not slow ``POST /api/v1/orders/``.

Each test prints its figures (events, deliveries, duplicates, lost), also kept in
``artifacts/webhook-faults.json``.
"""

from __future__ import annotations

import json
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from standardwebhooks.webhooks import Webhook

from opply.adapters.database import make_engine, make_read_engine
from opply.adapters.migrations import runner
from opply.application.dto import NewProduct, PlaceOrderCommand
from opply.application.dto import WebhookEndpointView as Endpoint
from opply.domain.model import LineRequest
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import (
    Database,
    build_test_container,
    empty_postgres_database,
    make_settings,
)
from tests.integration.receivers import Answer, Receiver, receiving
from tests.integration.servers import Cluster, process_env, throwaway_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES = REPO_ROOT / "artifacts" / "webhook-faults.json"
FAST_RETRIES = ",".join(["1"] * 30)


@dataclass
class Shop:
    database: Database
    container: Container
    customer: int
    product: int

    def place(self, count: int) -> list[int]:
        place = self.container.place_order()
        line = LineRequest(product_id=self.product, quantity=1)
        command = PlaceOrderCommand(customer_id=self.customer, lines=[line])
        return [place(command).order_id for _ in range(count)]

    def endpoint(self, url: str) -> Endpoint:
        return self.container.create_webhook()(url=url, event_types=["order.placed"])

    def stats(self) -> Any:
        return self.container.webhook_store().stats()

    def worker(self, tmp: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
        with (tmp / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "opply.entrypoints.cli", "worker"],
                cwd=REPO_ROOT,
                env=process_env(
                    DATABASE_URL=self.database.url,
                    SECRET_KEY=secrets.token_urlsafe(48),
                    OPPLY_ENV="development",  # http:// to 127.0.0.1 allowed
                    WEBHOOK_RETRY_SCHEDULE=FAST_RETRIES,
                    WEBHOOK_POLL_INTERVAL="0.1",
                    **env,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def _shop(url: str) -> Shop:
    engine = make_engine(url, pool_size=10, max_overflow=10)
    runner.upgrade(engine)
    database = Database(
        name="postgresql", url=url, engine=engine, read_engine=make_read_engine(engine)
    )
    container = build_test_container(database)
    customer = f.user(container, username="ann").id
    product = container.create_product()(
        NewProduct(name="Oats", price=Decimal("2.50"), quantity_in_stock=1_000_000)
    ).id
    return Shop(database=database, container=container, customer=customer, product=product)


@pytest.fixture
def shop() -> Iterator[Shop]:
    with empty_postgres_database("opply_webhooks") as url:
        made = _shop(url)
        yield made
        made.database.read_engine.dispose()
        made.database.engine.dispose()


@contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The worker, stopped with SIGTERM afterwards (if still running): it must exit 0 within
    its attempts' timeout."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError("the worker did not stop on SIGTERM") from None
            assert process.returncode == 0, f"the worker exited {process.returncode}"


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def figures(test: str, receiver: Receiver, events: int, **more: Any) -> dict[str, Any]:
    ids = Counter(r.headers["webhook-id"] for r in receiver.received)
    found = {
        "events": events,
        "requests": len(receiver.received),
        "distinct_webhook_ids": len(ids),
        "duplicates": sum(n - 1 for n in ids.values()),
        "lost": events - len(ids),
        **more,
    }
    print(f"\n{test}: {json.dumps(found)}")
    FIGURES.parent.mkdir(exist_ok=True)
    kept = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    kept[test] = found
    FIGURES.write_text(json.dumps(kept, indent=2) + "\n")
    return found


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_retry_has_the_same_id(
    shop: Shop, tmp_path: Path
) -> None:
    # The first request is still being answered when its worker dies.
    with receiving(lambda n: Answer(delay=5.0 if n == 0 else 0.0)) as receiver:
        endpoint = shop.endpoint(receiver.url)
        shop.place(1)
        started = time.monotonic()
        with running(shop.worker(tmp_path, "doomed", WEBHOOK_TIMEOUT="1")) as doomed:
            receiver.wait_for(1, timeout=15)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=5)
        with running(shop.worker(tmp_path, "heir", WEBHOOK_TIMEOUT="1")):
            # The dead worker's lease (2 x timeout + 5 s) runs out, then the heir sends it.
            got = receiver.wait_for(2, timeout=20)
            wait_until(lambda: shop.stats().delivered == 1, 10, "the retry recorded")
        taken = time.monotonic() - started

    first, second = got[0], got[1]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert Webhook(endpoint.secret).verify(second.body, second.headers)["type"] == "order.placed"
    found = figures("worker_killed", receiver, 1, seconds=round(taken, 1))
    assert found["lost"] == 0


def test_a_receiver_down_for_a_while_gets_everything_once_it_is_up(
    shop: Shop, tmp_path: Path
) -> None:
    receiver = Receiver()
    shop.endpoint(receiver.url)
    shop.place(20)
    with running(shop.worker(tmp_path, "worker", WEBHOOK_TIMEOUT="2")):
        wait_until(lambda: shop.stats().pending == 20, 10, "deliveries made")
        time.sleep(3)  # every attempt refused meanwhile
        receiver.start()
        try:
            receiver.wait_for(20, timeout=20)
            wait_until(lambda: shop.stats().delivered == 20, 10, "all recorded")
        finally:
            receiver.stop()

    found = figures("receiver_down_then_up", receiver, 20)
    assert (found["lost"], found["distinct_webhook_ids"]) == (0, 20)


def test_two_workers_deliver_a_thousand_events_each_exactly_once(
    shop: Shop, tmp_path: Path
) -> None:
    with receiving() as receiver:
        endpoint = shop.endpoint(receiver.url)
        shop.place(1000)
        started = time.monotonic()
        with (
            running(shop.worker(tmp_path, "one", WEBHOOK_TIMEOUT="5")),
            running(shop.worker(tmp_path, "two", WEBHOOK_TIMEOUT="5")),
        ):
            receiver.wait_for(1000, timeout=60)
            wait_until(lambda: shop.stats().delivered == 1000, 20, "all recorded")
        taken = time.monotonic() - started
        time.sleep(0.2)  # nothing more comes

    hook = Webhook(endpoint.secret)
    assert all(hook.verify(r.body, r.headers) for r in receiver.received)
    found = figures(
        "two_workers_1000_events",
        receiver,
        1000,
        seconds=round(taken, 1),
        per_second=round(1000 / taken),
    )
    assert (found["requests"], found["duplicates"], found["lost"]) == (1000, 0, 0)


def test_a_slow_receiver_does_not_slow_placing_orders(shop: Shop, tmp_path: Path) -> None:
    app = create_app(make_settings(shop.database), container=shop.container)
    client = app.test_client()
    headers = f.bearer(client, "ann")
    body = f.order_body((shop.product, 1))
    try:
        with receiving(lambda _n: Answer(delay=2.0)) as receiver:
            shop.endpoint(receiver.url)
            with running(shop.worker(tmp_path, "worker", WEBHOOK_TIMEOUT="5")):
                receiver.wait_for(0)
                timings = []
                for _ in range(30):
                    started = time.perf_counter()
                    answer = client.post("/api/v1/orders/", json=body, headers=headers)
                    timings.append(time.perf_counter() - started)
                    assert answer.status_code == 201
                receiver.wait_for(8, timeout=10)  # the worker is busy with the slow receiver
    finally:
        unwire_app(app)

    p50, worst = statistics.median(timings), max(timings)
    figures(
        "slow_receiver_orders",
        receiver,
        len({r.headers["webhook-id"] for r in receiver.received}),
        order_p50_ms=round(p50 * 1000, 1),
        order_max_ms=round(worst * 1000, 1),
    )
    assert p50 < 0.25
    assert worst < 2.0  # never a receiver's 2 s


def test_postgresql_restarted_during_delivery_loses_nothing(tmp_path: Path) -> None:
    with throwaway_cluster() as cluster:
        admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "opply"'))
        admin.dispose()
        shop = _shop(cluster.database_url("opply"))
        with receiving(lambda _n: Answer(delay=0.05)) as receiver:
            shop.endpoint(receiver.url)
            shop.place(100)
            shop.database.engine.dispose()
            shop.database.read_engine.dispose()
            with running(
                shop.worker(tmp_path, "worker", WEBHOOK_TIMEOUT="2", WEBHOOK_CONCURRENCY="2")
            ) as worker:
                receiver.wait_for(10, timeout=20)
                restart(cluster)
                receiver.wait_for(100, timeout=40)
                wait_until(lambda: _delivered(shop) == 100, 20, "all recorded")
                assert worker.poll() is None, "the worker kept running"
        shop.database.engine.dispose()
        shop.database.read_engine.dispose()
    found = figures("postgres_restarted", receiver, 100)
    assert found["lost"] == 0


def restart(cluster: Cluster) -> None:
    cluster.stop("fast")
    time.sleep(2.0)
    cluster.start()


def _delivered(shop: Shop) -> int:
    try:
        return int(shop.stats().delivered)
    except Exception:  # the database is still coming back
        return -1
