"""v1.2 under real concurrency on PostgreSQL (threads released together, each request on its own
session and connection, real commits): exactly one default address however many changes race,
and invoice numbers with no gap and no repeat however many ships race or roll back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from opply.adapters.orm import addresses
from opply.application.unit_of_work import UnitOfWork
from opply.entrypoints.app import create_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container, make_settings

pytestmark = pytest.mark.postgres

T = TypeVar("T")
ROUNDS = 3
ADDRESS = {
    "recipient": "Jane Baker",
    "line1": "12 Mill Lane",
    "postal_code": "EC1A 1BB",
    "city": "London",
    "country": "GB",
}


@pytest.fixture
def database(postgres_database: Database) -> Database:
    return postgres_database


@pytest.fixture
def live_container(committed_db: Database) -> Container:
    return build_test_container(committed_db)


@pytest.fixture
def live_app(committed_db: Database, live_container: Container) -> Flask:
    settings = make_settings(
        committed_db, ratelimit_enabled=False, db_pool_size=10, db_max_overflow=50
    )
    return create_app(settings, container=live_container)


def race(calls: Sequence[Callable[[], T]]) -> list[T]:
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=120) for future in futures]


def _defaults(database: Database, customer_id: int) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(addresses)
                .where(addresses.c.customer_id == customer_id, addresses.c.is_default)
            ).scalar_one()
        )


def test_racing_address_changes_leave_exactly_one_default(
    live_app: Flask, live_container: Container, committed_db: Database
) -> None:
    client = live_app.test_client()
    for _ in range(ROUNDS):
        user = f.user(live_container)
        headers = f.bearer(client, user.username)

        def add(default: bool, headers: dict[str, str] = headers) -> Any:
            body = {**ADDRESS, "is_default": default}
            return live_app.test_client().post("/api/v1/me/addresses/", json=body, headers=headers)

        answers = race([lambda n=n: add(n % 2 == 0) for n in range(8)])
        assert [a.status_code for a in answers] == [201] * 8
        assert _defaults(committed_db, user.id) == 1
        book = client.get("/api/v1/me/addresses/", headers=headers).get_json()["results"]

        def change(address_id: int, n: int, headers: dict[str, str] = headers) -> Any:
            path = f"/api/v1/me/addresses/{address_id}/"
            other = live_app.test_client()
            if n % 3 == 0:
                return other.delete(path, headers=headers)
            return other.patch(path, json={"is_default": True}, headers=headers)

        answers = race([lambda a=a, n=n: change(a["id"], n) for n, a in enumerate(book)])
        assert {a.status_code for a in answers} <= {200, 204}
        assert _defaults(committed_db, user.id) == 1


def test_fifty_racing_ships_get_fifty_consecutive_invoice_numbers(
    live_app: Flask, live_container: Container
) -> None:
    client = live_app.test_client()
    customer = f.bearer(client, f.user(live_container).username)
    staff = f.bearer(client, f.user(live_container, staff=True).username)
    uow: UnitOfWork = live_container.uow()
    product = f.product(uow, stock=100)
    ids = [
        client.post(
            "/api/v1/orders/", json=f.order_body((product.id, 1)), headers=customer
        ).get_json()["id"]
        for _ in range(50)
    ]

    def ship(order_id: int) -> Any:
        other: FlaskClient = live_app.test_client()
        return other.post(f"/api/v1/staff/orders/{order_id}/ship/", headers=staff)

    started = time.perf_counter()
    answers = race([lambda i=i: ship(i) for i in ids])
    elapsed = time.perf_counter() - started
    assert [a.status_code for a in answers] == [200] * 50
    year = datetime.now(UTC).year
    numbers = sorted(a.get_json()["invoice_number"] for a in answers)
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 51)]
    print(f"\n50 concurrent ships: numbers 1-50, no gap, no repeat, in {elapsed:.2f} s")


def test_a_ship_rolled_back_gives_its_number_to_the_shipper_waiting_behind_it(
    live_app: Flask, live_container: Container
) -> None:
    client = live_app.test_client()
    customer = f.bearer(client, f.user(live_container).username)
    staff = f.bearer(client, f.user(live_container, staff=True).username)
    uow: UnitOfWork = live_container.uow()
    product = f.product(uow, stock=10)
    first, second = (
        client.post(
            "/api/v1/orders/", json=f.order_body((product.id, 1)), headers=customer
        ).get_json()["id"]
        for _ in range(2)
    )
    shipped = client.post(f"/api/v1/staff/orders/{first}/ship/", headers=staff).get_json()
    year = datetime.now(UTC).year
    assert shipped["invoice_number"] == f"INV-{year}-000001"

    taken = threading.Event()
    answer: dict[str, Any] = {}

    def ship_behind() -> None:
        taken.wait(10)
        answer["json"] = (
            live_app.test_client()
            .post(f"/api/v1/staff/orders/{second}/ship/", headers=staff)
            .get_json()
        )

    behind = threading.Thread(target=ship_behind)
    behind.start()
    with uow.write() as tx:  # a ship whose transaction fails after taking its number
        assert tx.invoice_numbers.next(year) == 2
        taken.set()
        time.sleep(0.5)  # the other shipper is now waiting on the year's row
        # no commit: rolled back on leaving
    behind.join(30)
    assert answer["json"]["invoice_number"] == f"INV-{year}-000002"
