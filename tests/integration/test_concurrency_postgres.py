"""Real concurrency on real PostgreSQL: threads released together by a barrier, each request on
its own session and connection, real commits (the tables are emptied afterwards).

What a customer could see go wrong: a unit sold twice, stock below zero, a 500 from a deadlock,
a retried order placed twice, a stolen refresh token that keeps working.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from opply.adapters.orm import orders
from opply.application.unit_of_work import UnitOfWork
from opply.entrypoints.app import create_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container, make_settings

pytestmark = pytest.mark.postgres

T = TypeVar("T")
ROUNDS = 5  # races are repeated: one lucky interleaving proves little


@pytest.fixture
def database(postgres_database: Database) -> Database:
    """PostgreSQL only (skipped with the conftest's message when TEST_DATABASE_URL is unset)."""
    return postgres_database


@pytest.fixture
def live_container(committed_db: Database) -> Container:
    """Use cases on the real engine: every unit of work gets its own session and connection."""
    return build_test_container(committed_db)


@pytest.fixture
def live_app(committed_db: Database, live_container: Container) -> Flask:
    # Dozens of logins and refreshes from one address in a second: abuse limits would answer
    # 429 to what these tests are about (they are tested on their own).
    settings = make_settings(committed_db, ratelimit_enabled=False)
    return create_app(settings, container=live_container)


@pytest.fixture
def new_uow(live_container: Container) -> UnitOfWork:
    uow: UnitOfWork = live_container.uow()
    return uow


def race(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, all released at the same instant; results in order."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


@dataclass
class Buyer:
    """One phone: its own test client, and a logged-in customer's headers."""

    client: FlaskClient
    headers: dict[str, str]

    @classmethod
    def new(cls, app: Flask, container: Container) -> Buyer:
        client = app.test_client()
        return cls(client, f.bearer(client, f.user(container).username))

    def another_phone(self, app: Flask) -> Buyer:
        """The same customer on another connection (a retry, a second device)."""
        return Buyer(app.test_client(), self.headers)

    def cancel(self, order_id: int) -> Any:
        return self.client.post(f"/api/v1/orders/{order_id}/cancel/", headers=self.headers)

    def order(self, *lines: tuple[int, int], key: str | None = None) -> Any:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post("/api/v1/orders/", json=f.order_body(*lines), headers=headers)


def _stock(app: Flask, product_id: int) -> int:
    body = app.test_client().get(f"/api/v1/products/{product_id}/").get_json()
    stock: int = body["quantity_in_stock"]
    return stock


def _orders_in_db(database: Database) -> int:
    with database.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(orders)) or 0


def test_two_customers_racing_for_the_last_unit_one_gets_it_and_one_gets_409(
    live_app: Flask, live_container: Container, new_uow: Any, committed_db: Database
) -> None:
    alice, bob = Buyer.new(live_app, live_container), Buyer.new(live_app, live_container)
    for _ in range(ROUNDS):
        last = f.product(new_uow, stock=1)
        answers = race([partial(b.order, (last.id, 1)) for b in (alice, bob)])
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 409], [a.get_json() for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.content_type == "application/problem+json"
        assert refused.get_json()["code"] == "out_of_stock"
        assert refused.get_json()["errors"] == [
            {"product_id": last.id, "requested": 1, "available": 0}
        ]
        assert _stock(live_app, last.id) == 0
    assert _orders_in_db(committed_db) == ROUNDS


def test_twenty_buyers_racing_for_seven_units_buy_exactly_seven(
    live_app: Flask, live_container: Container, new_uow: Any, committed_db: Database
) -> None:
    buyers = [Buyer.new(live_app, live_container) for _ in range(20)]
    scarce = f.product(new_uow, stock=7)
    answers = race([partial(b.order, (scarce.id, 1)) for b in buyers])
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 7, 409: 13}, [a.get_json() for a in answers if a.status_code >= 500]
    assert {a.get_json()["code"] for a in answers if a.status_code == 409} == {"out_of_stock"}
    assert _stock(live_app, scarce.id) == 0
    assert _orders_in_db(committed_db) == 7
    winners = {a.get_json()["id"] for a in answers if a.status_code == 201}
    assert len(winners) == 7


def test_orders_naming_the_same_products_in_opposite_order_never_deadlock(
    live_app: Flask, live_container: Container, new_uow: Any, committed_db: Database
) -> None:
    a = f.product(new_uow, stock=1000)
    b = f.product(new_uow, stock=1000)
    buyers = [Buyer.new(live_app, live_container) for _ in range(4)]
    threads, per_thread = 16, 3

    def shop(i: int) -> list[int]:
        buyer = buyers[i % len(buyers)]
        lines = [(a.id, 1), (b.id, 2)] if i % 2 else [(b.id, 2), (a.id, 1)]
        return [buyer.order(*lines).status_code for _ in range(per_thread)]

    results = race([partial(shop, i) for i in range(threads)])
    statuses = [status for result in results for status in result]
    assert Counter(statuses) == {201: threads * per_thread}
    assert _stock(live_app, a.id) == 1000 - threads * per_thread
    assert _stock(live_app, b.id) == 1000 - 2 * threads * per_thread
    assert _orders_in_db(committed_db) == threads * per_thread


def test_one_idempotency_key_sent_by_ten_threads_at_once_places_one_order(
    live_app: Flask, live_container: Container, new_uow: Any, committed_db: Database
) -> None:
    product = f.product(new_uow, stock=10)
    phone = Buyer.new(live_app, live_container)
    retries = [phone.another_phone(live_app) for _ in range(10)]
    answers = race([partial(r.order, (product.id, 2), key="tap-on-a-train") for r in retries])
    assert [a.status_code for a in answers] == [201] * 10, [a.get_json() for a in answers]
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert len({a.headers["Location"] for a in answers}) == 1
    replayed = [a.headers.get("Idempotent-Replayed") for a in answers]
    assert sorted(replayed, key=str) == [None] + ["true"] * 9
    assert _stock(live_app, product.id) == 8
    assert _orders_in_db(committed_db) == 1


def test_two_cancels_of_one_order_at_once_put_the_stock_back_once(
    live_app: Flask, live_container: Container, new_uow: Any
) -> None:
    buyer = Buyer.new(live_app, live_container)
    other_phone = buyer.another_phone(live_app)
    for _ in range(ROUNDS):
        product = f.product(new_uow, stock=10)
        placed = buyer.order((product.id, 4))
        assert placed.status_code == 201
        order_id = placed.get_json()["id"]
        answers = race([partial(phone.cancel, order_id) for phone in (buyer, other_phone)])
        assert sorted(a.status_code for a in answers) == [200, 409]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.get_json()["code"] == "order_not_cancellable"
        assert _stock(live_app, product.id) == 10


def _refresh(client: FlaskClient, token: str) -> Any:
    return client.post("/api/token/refresh/", json={"refresh": token})


def test_a_refresh_token_replayed_after_rotation_revokes_its_whole_family(
    live_app: Flask, live_container: Container
) -> None:
    client = live_app.test_client()
    username = f.user(live_container).username
    stolen = f.login(client, username)["refresh"]
    rotated = _refresh(client, stolen)
    assert rotated.status_code == 200
    newest = rotated.get_json()["refresh"]

    replay = _refresh(client, stolen)  # the thief's copy comes back
    assert replay.status_code == 401
    assert replay.get_json()["code"] == "invalid_token"
    refused = _refresh(client, newest)  # and the owner's newest token dies with it
    assert refused.status_code == 401
    assert refused.get_json()["code"] == "invalid_token"
    # A fresh login starts a new family that works.
    assert _refresh(client, f.login(client, username)["refresh"]).status_code == 200


def test_one_refresh_token_used_by_four_threads_at_once_rotates_at_most_once(
    live_app: Flask, live_container: Container
) -> None:
    username = f.user(live_container).username
    clients = [live_app.test_client() for _ in range(4)]
    for _ in range(ROUNDS):
        token = f.login(clients[0], username)["refresh"]
        answers = race([partial(_refresh, c, token) for c in clients])
        assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]
        winner = next(a for a in answers if a.status_code == 200)
        # The losers presented a spent token: the family, the winner's new token included, ends.
        assert _refresh(clients[0], winner.get_json()["refresh"]).status_code == 401


def test_a_customers_cancel_racing_a_staff_ship_ends_with_exactly_one_of_them(
    live_app: Flask, live_container: Container, new_uow: Any
) -> None:
    buyer = Buyer.new(live_app, live_container)
    staff_client = live_app.test_client()
    staff = f.bearer(staff_client, f.user(live_container, staff=True).username)
    outcomes = Counter()
    for _ in range(ROUNDS * 2):
        product = f.product(new_uow, stock=10)
        placed = buyer.order((product.id, 4))
        assert placed.status_code == 201
        order_id = placed.get_json()["id"]

        def ship(order_id: int = order_id) -> Any:
            return staff_client.post(f"/api/v1/staff/orders/{order_id}/ship/", headers=staff)

        cancel, shipped = race([partial(buyer.cancel, order_id), ship])
        assert sorted([cancel.status_code, shipped.status_code]) == [200, 409]
        final = buyer.client.get(f"/api/v1/orders/{order_id}/", headers=buyer.headers).get_json()
        if cancel.status_code == 200:
            outcomes["cancelled"] += 1
            assert shipped.get_json()["code"] == "invalid_status_transition"
            assert (final["status"], final["shipped_at"]) == ("cancelled", None)
            assert _stock(live_app, product.id) == 10  # the units came back, once
        else:
            outcomes["shipped"] += 1
            assert cancel.get_json()["code"] == "order_not_cancellable"
            assert (final["status"], final["cancelled_at"]) == ("shipped", None)
            assert _stock(live_app, product.id) == 6  # a shipped order keeps its units
    assert sum(outcomes.values()) == ROUNDS * 2
    print(f"\ncancel racing ship, {ROUNDS * 2} rounds: {dict(outcomes)}")
