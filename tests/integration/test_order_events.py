"""Order events and the customer's feed, with real commits, on SQLite and PostgreSQL.

Every status change writes its event in its own transaction; the feed gives a poller every event
exactly once, an order's events in the order they happened, even when transactions commit in
another order than they took their ids (PostgreSQL: a transaction id and the oldest running
one; SQLite: writers take turns).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.database import make_session_factory
from opply.adapters.orm import order_events, orders
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.application.dto import FEED_START, PlaceOrderCommand
from opply.application.events import ReadMyEvents
from opply.application.orders import CancelMyOrder, OrderAction
from opply.domain.model import LineRequest
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container, make_settings

PROBLEM = "application/problem+json"


@pytest.fixture
def live_container(committed_db: Database) -> Container:
    return build_test_container(committed_db)


@pytest.fixture
def live_app(committed_db: Database, live_container: Container) -> Iterator[Flask]:
    app = create_app(make_settings(committed_db, ratelimit_enabled=False), container=live_container)
    yield app
    unwire_app(app)


@pytest.fixture
def http(live_app: Flask) -> FlaskClient:
    return live_app.test_client()


def _feed(http: FlaskClient, who: dict[str, str], **query: Any) -> dict[str, Any]:
    answer = http.get("/api/v1/me/events/", headers=who, query_string=query)
    assert answer.status_code == 200, answer.get_json()
    body: dict[str, Any] = answer.get_json()
    return body


def _settled(http: FlaskClient, who: dict[str, str], count: int) -> dict[str, Any]:
    """The feed once it shows ``count`` events. On PostgreSQL an event shows once every
    transaction older than its own has ended, in any database of the server (transaction ids
    are the server's): another test run's open transaction can hold it back for a moment."""
    deadline = time.monotonic() + 30
    while True:
        feed = _feed(http, who)
        if len(feed["results"]) >= count or time.monotonic() > deadline:
            return feed
        time.sleep(0.05)


def _place(http: FlaskClient, who: dict[str, str], product_id: int, quantity: int = 1) -> Any:
    answer = http.post("/api/v1/orders/", json=f.order_body((product_id, quantity)), headers=who)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_every_change_of_an_order_appears_in_its_customers_feed_with_the_order_as_it_was(
    http: FlaskClient, live_container: Container
) -> None:
    product = f.product(live_container.uow(), stock=10)
    f.user(live_container, username="alice")
    f.user(live_container, username="boss", staff=True)
    alice, staff = f.bearer(http, "alice"), f.bearer(http, "boss")

    first = _place(http, alice, product.id, 2)
    second = _place(http, alice, product.id, 1)
    shipped = http.post(f"/api/v1/staff/orders/{first['id']}/ship/", headers=staff).get_json()
    delivered = http.post(f"/api/v1/staff/orders/{first['id']}/deliver/", headers=staff).get_json()
    cancelled = http.post(f"/api/v1/orders/{second['id']}/cancel/", headers=alice).get_json()

    feed = _settled(http, alice, 5)
    assert [(e["type"], e["data"]["order"]["id"]) for e in feed["results"]] == [
        ("order.placed", first["id"]),
        ("order.placed", second["id"]),
        ("order.shipped", first["id"]),
        ("order.delivered", first["id"]),
        ("order.cancelled", second["id"]),
    ]
    orders_then = [e["data"]["order"] for e in feed["results"]]
    assert orders_then == [first, second, _customers(shipped), _customers(delivered), cancelled]
    assert feed["results"][2]["timestamp"] == shipped["shipped_at"]
    assert all(e["timestamp"].endswith("Z") for e in feed["results"])
    ids = [e["id"] for e in feed["results"]]
    assert len(set(ids)) == len(ids)


def _customers(staff_order: dict[str, Any]) -> dict[str, Any]:
    """An order as the staff API sends it, as its customer's GET sends it (no ``customer``)."""
    return {key: value for key, value in staff_order.items() if key != "customer"}


def test_polling_with_the_last_cursor_gives_nothing_twice_and_the_same_cursor_when_idle(
    http: FlaskClient, live_container: Container
) -> None:
    product = f.product(live_container.uow(), stock=10)
    f.user(live_container, username="alice")
    alice = f.bearer(http, "alice")
    empty = _feed(http, alice)
    assert empty["results"] == []
    assert _feed(http, alice, after=empty["next_after"]) == empty

    placed = [_place(http, alice, product.id)["id"] for _ in range(5)]
    _settled(http, alice, 5)
    seen: list[int] = []
    cursor = empty["next_after"]
    for _ in range(10):
        page = _feed(http, alice, after=cursor, limit=2)
        seen += [e["data"]["order"]["id"] for e in page["results"]]
        if not page["results"]:
            assert page["next_after"] == cursor
            break
        cursor = page["next_after"]
    assert seen == placed


def test_a_customer_never_sees_another_customers_events(
    http: FlaskClient, live_container: Container
) -> None:
    product = f.product(live_container.uow(), stock=10)
    f.user(live_container, username="alice")
    f.user(live_container, username="bob")
    alice, bob = f.bearer(http, "alice"), f.bearer(http, "bob")
    _place(http, alice, product.id)
    assert len(_settled(http, alice, 1)["results"]) == 1
    assert _feed(http, bob)["results"] == []


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "ZTEuMS4y=",  # ours, padded
        "ZTIuMS4y",  # another version
        "ZTEuLTEuMg",  # a negative position
        "x" * 129,
        "é",
    ],
)
def test_a_cursor_that_is_not_ours_is_a_422_invalid_cursor(
    http: FlaskClient, live_container: Container, cursor: str
) -> None:
    f.user(live_container, username="alice")
    answer = http.get(
        "/api/v1/me/events/", headers=f.bearer(http, "alice"), query_string={"after": cursor}
    )
    assert answer.status_code == 422
    assert answer.mimetype == PROBLEM
    assert answer.get_json()["code"] in {"invalid_cursor", "validation_error"}


def test_the_feed_needs_a_login(http: FlaskClient) -> None:
    assert http.get("/api/v1/me/events/").status_code == 401


# --- the events are written with their change, and only with it ------------------------------


def _events_in_db(database: Database) -> list[tuple[str, int]]:
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(order_events.c.type, order_events.c.order_id).order_by(order_events.c.id)
        )
        return [(row.type, row.order_id) for row in rows]


def test_a_refused_move_and_a_refused_order_write_no_event(
    http: FlaskClient, live_container: Container, committed_db: Database
) -> None:
    product = f.product(live_container.uow(), stock=1)
    f.user(live_container, username="alice")
    f.user(live_container, username="boss", staff=True)
    alice, staff = f.bearer(http, "alice"), f.bearer(http, "boss")
    order = _place(http, alice, product.id)
    again = http.post("/api/v1/orders/", json=f.order_body((product.id, 1)), headers=alice)
    assert again.status_code == 409
    deliver = http.post(f"/api/v1/staff/orders/{order['id']}/deliver/", headers=staff)
    assert deliver.status_code == 409
    assert _events_in_db(committed_db) == [("order.placed", order["id"])]


def test_a_keyed_retry_writes_no_second_event(
    http: FlaskClient, live_container: Container, committed_db: Database
) -> None:
    product = f.product(live_container.uow(), stock=5)
    f.user(live_container, username="alice")
    alice = {**f.bearer(http, "alice"), "Idempotency-Key": "once-only"}
    for _ in range(3):
        answer = http.post("/api/v1/orders/", json=f.order_body((product.id, 1)), headers=alice)
        assert answer.status_code == 201
    assert len(_events_in_db(committed_db)) == 1


def test_an_order_whose_transaction_rolls_back_leaves_no_event(
    live_container: Container, committed_db: Database
) -> None:
    product = f.product(live_container.uow(), stock=5)
    alice = f.user(live_container, username="alice")
    place = live_container.place_order()
    failing = _failing_commits(committed_db)
    uow = SqlUnitOfWork(read_bind=committed_db.read_engine, session_factory=failing)
    line = LineRequest(product_id=product.id, quantity=1)
    with pytest.raises(RuntimeError, match="commit refused"):
        type(place)(uow, live_container.clock(), "EUR")(
            PlaceOrderCommand(customer_id=alice.id, lines=[line])
        )
    assert _events_in_db(committed_db) == []
    with committed_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0


def _failing_commits(database: Database) -> sessionmaker[Session]:
    factory = make_session_factory(database.engine)

    def refuse(_session: Session) -> None:
        raise RuntimeError("commit refused")

    event.listen(factory, "before_commit", refuse)
    return factory


# --- exactly once, whatever order transactions commit in ---------------------------------------


def test_a_poller_sees_every_event_once_while_many_customers_order_and_cancel_at_once(
    live_container: Container,
) -> None:
    """Threads place and cancel orders (each on its own connection) while a poller follows
    every customer's feed; when all is done, the poller saw each event exactly once, and each
    order's events in the order they happened."""
    product = f.product(live_container.uow(), stock=1_000_000)
    customers = [f.user(live_container).id for _ in range(4)]
    place, cancel = live_container.place_order(), live_container.cancel_my_order()
    read = ReadMyEvents(live_container.uow())
    done = threading.Event()
    seen: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    cursors: dict[int, str | None] = dict.fromkeys(customers)

    def poll_once() -> None:
        for customer in customers:
            feed = read(customer, cursors[customer], 100)
            seen[customer] += [(e.id, e.type, e.order.id) for e in feed.items]
            cursors[customer] = feed.next_after

    def poller() -> None:
        while not done.is_set():
            poll_once()

    def shopper(customer: int) -> None:
        for round_ in range(8):
            placed = place(
                PlaceOrderCommand(
                    customer_id=customer, lines=[LineRequest(product_id=product.id, quantity=1)]
                )
            )
            if round_ % 2:
                cancel_order(cancel, customer, placed.order_id)

    with ThreadPoolExecutor(max_workers=len(customers) + 1) as pool:
        watching = pool.submit(poller)
        for shopping in [pool.submit(shopper, c) for c in customers]:
            shopping.result()
        done.set()
        watching.result()
    deadline = time.monotonic() + 30
    while sum(map(len, seen.values())) < 12 * len(customers) and time.monotonic() < deadline:
        poll_once()

    with live_container.uow().read() as reads:
        for customer in customers:
            everything = reads.order_events(customer, after=FEED_START, limit=1000)
            assert [(e.id, e.type, e.order.id) for e in everything] == seen[customer]
            assert len(seen[customer]) == 8 + 4
            by_order: dict[int, list[str]] = defaultdict(list)
            for _, type_, order_id in seen[customer]:
                by_order[order_id].append(type_)
            assert sorted(by_order.values()) == sorted(
                [["order.placed"]] * 4 + [["order.placed", "order.cancelled"]] * 4
            )


def cancel_order(cancel: CancelMyOrder, customer: int, order_id: int) -> None:
    view = cancel(customer, order_id)
    assert view.status.value == "cancelled"


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_an_event_committed_late_by_an_older_transaction_is_not_skipped_by_a_poller(
    committed_db: Database, live_container: Container
) -> None:
    """The case a sequence alone gets wrong: transaction A writes an event (smaller id, older
    transaction) but commits after B, whose event has a larger id. A poller that read B's event
    first would move past A's. Here the poller waits for A (B's event is held back while A
    runs), then gets A's and B's, each once."""
    container = live_container
    first, second = (f.product(container.uow(), stock=10) for _ in range(2))
    alice = f.user(container, username="alice").id
    read = ReadMyEvents(container.uow())
    a_wrote, a_may_commit = threading.Event(), threading.Event()
    a_factory = make_session_factory(committed_db.engine)

    def hold_commit(_session: Session) -> None:
        a_wrote.set()
        assert a_may_commit.wait(10)

    event.listen(a_factory, "before_commit", hold_commit)
    place_a = type(container.place_order())(
        SqlUnitOfWork(read_bind=committed_db.read_engine, session_factory=a_factory),
        container.clock(),
        "EUR",
    )
    place_b = container.place_order()

    def line(product_id: int) -> list[LineRequest]:
        return [LineRequest(product_id=product_id, quantity=1)]

    with ThreadPoolExecutor(max_workers=1) as pool:
        a = pool.submit(place_a, PlaceOrderCommand(customer_id=alice, lines=line(first.id)))
        assert a_wrote.wait(10)  # A has written its order and event, and not committed
        b = place_b(PlaceOrderCommand(customer_id=alice, lines=line(second.id)))
        while_a_runs = read(alice, None, 50)
        assert while_a_runs.items == []  # B's event waits behind A, which may yet commit
        a_may_commit.set()
        a_order = a.result().order_id

    deadline = time.monotonic() + 30
    after = read(alice, while_a_runs.next_after, 50)
    while len(after.items) < 2 and time.monotonic() < deadline:
        after = read(alice, while_a_runs.next_after, 50)
    assert [e.order.id for e in after.items] == [a_order, b.order_id]
    ids = [e.id for e in after.items]
    assert ids == sorted(ids)  # A took the smaller id and committed last
    assert read(alice, after.next_after, 50).items == []


def test_the_order_in_an_event_is_kept_as_it_was_when_prices_change_later(
    http: FlaskClient, live_container: Container
) -> None:
    product = f.product(live_container.uow(), price="4.00", stock=10)
    f.user(live_container, username="alice")
    f.user(live_container, username="boss", staff=True)
    alice, staff = f.bearer(http, "alice"), f.bearer(http, "boss")
    _place(http, alice, product.id, 3)
    http.patch(f"/api/v1/products/{product.id}/", json={"price": "9.00"}, headers=staff)
    (placed,) = _settled(http, alice, 1)["results"]
    assert placed["data"]["order"]["lines"][0]["unit_price"] == "4.00"
    assert Decimal(placed["data"]["order"]["total"]) == Decimal("12.00")


def test_every_staff_action_is_an_event(live_container: Container, committed_db: Database) -> None:
    """Each action staff can take (API and admin share the use case) records its event."""
    product = f.product(live_container.uow(), stock=10)
    alice = f.user(live_container, username="alice").id
    place, move = live_container.place_order(), live_container.move_order()
    line = [LineRequest(product_id=product.id, quantity=1)]
    first = place(PlaceOrderCommand(customer_id=alice, lines=line)).order_id
    second = place(PlaceOrderCommand(customer_id=alice, lines=line)).order_id
    for action in (OrderAction.SHIP, OrderAction.DELIVER):
        move(first, action)
    move(second, OrderAction.CANCEL)
    assert _events_in_db(committed_db) == [
        ("order.placed", first),
        ("order.placed", second),
        ("order.shipped", first),
        ("order.delivered", first),
        ("order.cancelled", second),
    ]
