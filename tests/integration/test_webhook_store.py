"""The webhook store's contract, on memory, SQLite and PostgreSQL: endpoints, the fan-out of
events to deliveries, claims under a lease, and recorded results.

The SQL stores run on real commits (the fan-out reads only below PostgreSQL's horizon, which an
uncommitted test transaction never passes); the tables are emptied afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, insert, select

from opply.adapters.database import make_session_factory
from opply.adapters.memory import FakePasswordHasher, FixedClock, InMemoryStore, InMemoryUnitOfWork
from opply.adapters.memory_webhooks import InMemoryWebhookStore
from opply.adapters.orm import order_events, webhook_fanout
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.adapters.sql_webhooks import SqlWebhookStore
from opply.application.dto import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    NewProduct,
    NewUser,
    NewWebhookEndpoint,
    PageRequest,
    PlaceOrderCommand,
)
from opply.application.orders import MoveOrder, OrderAction, PlaceOrder
from opply.application.ports import WebhookStore
from opply.application.products import CreateProduct
from opply.application.unit_of_work import UnitOfWork
from opply.application.users import CreateUser
from opply.application.webhooks import DeliveryPolicy, SendOutcome
from opply.domain.model import LineRequest
from tests.integration.conftest import Database, empty_every_table

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
ALL_TYPES = ("order.placed", "order.shipped", "order.delivered", "order.cancelled")


@dataclass
class Shop:
    uow: UnitOfWork
    store: WebhookStore
    customer: int
    product: int

    def place(self) -> int:
        place = PlaceOrder(self.uow, FixedClock(T0), "EUR")
        line = LineRequest(product_id=self.product, quantity=1)
        return place(PlaceOrderCommand(customer_id=self.customer, lines=[line])).order_id

    def ship(self, order_id: int) -> None:
        MoveOrder(self.uow, FixedClock(T0))(order_id, OrderAction.SHIP)

    def endpoint(self, *types: str, url: str = "https://example.com/hook") -> int:
        return self.store.add_endpoint(
            NewWebhookEndpoint(
                url=url,
                event_types=types or ALL_TYPES,
                description="",
                secret="whsec_" + "A" * 44,
                created_at=T0,
            )
        ).id


def _stock(uow: UnitOfWork) -> tuple[int, int]:
    customer = CreateUser(uow, FakePasswordHasher())(
        NewUser(username="ann", password="a-long-test-password", is_staff=False)
    ).id
    product = CreateProduct(uow)(
        NewProduct(name="Oats", price=Decimal("2.50"), quantity_in_stock=1000)
    ).id
    return customer, product


def reset_fanout(database: Database) -> None:
    """Put the fan-out's cursor after every event (the committed tests empty every table)."""
    with database.engine.begin() as conn:
        conn.execute(delete(webhook_fanout))
        last = conn.execute(
            select(
                func.coalesce(func.max(order_events.c.tx_id), 0),
                func.coalesce(func.max(order_events.c.id), 0),
            )
        ).one()
        conn.execute(insert(webhook_fanout).values(id=1, tx_id=last[0], event_id=last[1]))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest) -> Iterator[Shop]:
    if request.param == "memory":
        memory = InMemoryStore()
        uow: UnitOfWork = InMemoryUnitOfWork(memory)
        customer, product = _stock(uow)
        yield Shop(uow=uow, store=InMemoryWebhookStore(memory), customer=customer, product=product)
        return
    name = {"sqlite": "sqlite_database", "postgresql": "postgres_database"}[request.param]
    database: Database = request.getfixturevalue(name)
    reset_fanout(database)
    uow = SqlUnitOfWork(database.read_engine, make_session_factory(database.engine))
    customer, product = _stock(uow)
    try:
        yield Shop(
            uow=uow, store=SqlWebhookStore(database.engine), customer=customer, product=product
        )
    finally:
        empty_every_table(database)
        reset_fanout(database)


def fan_out_everything(store: WebhookStore, at: datetime = T0) -> int:
    """Fan out until the store has passed every event it may (PostgreSQL's horizon can hold
    back events of transactions of other tests on the same server for a moment)."""
    total = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        passed = store.fan_out(at, 1000)
        if passed:
            total += passed
            continue
        if total:
            return total
        time.sleep(0.05)
    return total


def result(claimed: ClaimedDelivery, outcome: SendOutcome, at: datetime = T0) -> AttemptResult:
    return DeliveryPolicy(schedule=(5, 60)).result(claimed, outcome, at=at, duration_ms=3)


def test_a_new_endpoint_comes_back_as_created_and_pages_list_the_newest_first(shop: Shop) -> None:
    first = shop.endpoint("order.placed")
    second = shop.endpoint()

    found = shop.store.endpoint(first)
    assert found is not None
    assert (found.url, found.event_types, found.is_active) == (
        "https://example.com/hook",
        ("order.placed",),
        True,
    )
    page = shop.store.endpoint_page(PageRequest(page=1, page_size=1))
    assert [e.id for e in page.items] == [second]
    assert page.total == 2
    assert shop.store.endpoint(second + 1000) is None


def test_changing_an_endpoint_sets_only_the_fields_given(shop: Shop) -> None:
    endpoint = shop.endpoint("order.placed")

    changed = shop.store.change_endpoint(endpoint, {"event_types": ("order.shipped",)})

    assert changed is not None
    assert changed.event_types == ("order.shipped",)
    assert changed.url == "https://example.com/hook"
    assert shop.store.change_endpoint(endpoint + 1000, {"is_active": False}) is None


def test_each_event_becomes_one_delivery_per_active_endpoint_that_wants_its_type(
    shop: Shop,
) -> None:
    everything = shop.endpoint()
    placed_only = shop.endpoint("order.placed")
    switched_off = shop.endpoint()
    shop.store.change_endpoint(switched_off, {"is_active": False})
    order_id = shop.place()
    shop.ship(order_id)

    assert fan_out_everything(shop.store) == 2
    assert shop.store.fan_out(T0, 100) == 0  # nothing twice

    to_everything = shop.store.delivery_page(everything, PageRequest())
    assert [d.event_type for d in to_everything.items] == ["order.shipped", "order.placed"]
    assert [d.status for d in to_everything.items] == [DeliveryStatus.PENDING] * 2
    assert [d.event_type for d in shop.store.delivery_page(placed_only, PageRequest()).items] == [
        "order.placed"
    ]
    assert shop.store.delivery_page(switched_off, PageRequest()).total == 0


def test_a_claim_leases_due_deliveries_once_with_the_order_as_staff_see_it(shop: Shop) -> None:
    shop.endpoint()
    order_id = shop.place()
    fan_out_everything(shop.store)

    [claimed] = shop.store.claim(T0, LEASE, 10)

    assert claimed.attempt == 1
    assert claimed.event.type == "order.placed"
    assert claimed.event.order.id == order_id
    assert claimed.event.order.customer is not None
    assert claimed.event.order.customer.username == "ann"
    assert shop.store.claim(T0 + LEASE / 2, LEASE, 10) == []  # leased
    [again] = shop.store.claim(T0 + LEASE * 2, LEASE, 10)  # the lease ran out: a new attempt
    assert (again.delivery_id, again.attempt) == (claimed.delivery_id, 2)


def test_an_attempt_recorded_after_its_lease_was_taken_over_changes_nothing(shop: Shop) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    [first] = shop.store.claim(T0, LEASE, 10)
    [second] = shop.store.claim(T0 + LEASE * 2, LEASE, 10)

    assert not shop.store.record(result(first, SendOutcome(status_code=200)))
    assert shop.store.record(result(second, SendOutcome(status_code=500)))

    delivery = shop.store.delivery(first.delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.PENDING,
        2,
        500,
    )
    assert [a.status_code for a in shop.store.attempts(first.delivery_id)] == [500]


def test_a_delivered_one_is_never_claimed_again_and_counts_as_delivered(shop: Shop) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    [claimed] = shop.store.claim(T0, LEASE, 10)

    assert shop.store.record(result(claimed, SendOutcome(status_code=204)))

    assert shop.store.claim(T0 + timedelta(days=1), LEASE, 10) == []
    stats = shop.store.stats()
    assert (stats.pending, stats.delivered, stats.failed) == (0, 1, 0)
    assert stats.oldest_pending_created_at is None


def test_a_failed_attempt_waits_for_its_turn_and_the_last_one_fails_the_delivery(
    shop: Shop,
) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    at = T0
    for wait in (5, 60):
        [claimed] = shop.store.claim(at, LEASE, 10)
        shop.store.record(result(claimed, SendOutcome(error="refused"), at=at))
        assert shop.store.claim(at + timedelta(seconds=wait - 1), LEASE, 10) == []
        at += timedelta(seconds=wait)
    [last] = shop.store.claim(at, LEASE, 10)
    shop.store.record(result(last, SendOutcome(status_code=503), at=at))

    delivery = shop.store.delivery(last.delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        None,
    )
    assert shop.store.stats().failed == 1
    assert [a.error for a in shop.store.attempts(last.delivery_id)] == [
        "refused",
        "refused",
        "HTTP 503",
    ]


def test_only_a_failed_delivery_goes_back_to_the_queue(shop: Shop) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    [claimed] = shop.store.claim(T0, LEASE, 10)
    assert shop.store.requeue_failed(claimed.delivery_id, T0) is None  # pending
    failing = DeliveryPolicy(schedule=()).result(
        claimed, SendOutcome(status_code=500), at=T0, duration_ms=1
    )
    shop.store.record(failing)

    requeued = shop.store.requeue_failed(claimed.delivery_id, T0 + LEASE)

    assert requeued is not None
    assert (requeued.status, requeued.next_attempt_at) == (DeliveryStatus.PENDING, T0 + LEASE)
    [again] = shop.store.claim(T0 + LEASE, LEASE, 10)
    assert again.attempt == 2


def test_a_410_gone_disables_the_endpoint_and_its_deliveries_wait(shop: Shop) -> None:
    endpoint = shop.endpoint()
    shop.place()
    shop.place()
    fan_out_everything(shop.store)
    [gone, waiting] = shop.store.claim(T0, LEASE, 1) + shop.store.claim(T0, LEASE, 1)
    shop.store.release(waiting)

    shop.store.record(result(gone, SendOutcome(status_code=410)))

    found = shop.store.endpoint(endpoint)
    assert found is not None
    assert not found.is_active
    assert shop.store.claim(T0 + timedelta(days=1), LEASE, 10) == []
    shop.store.change_endpoint(endpoint, {"is_active": True})
    assert len(shop.store.claim(T0 + timedelta(days=1), LEASE, 10)) == 2


def test_a_released_lease_is_due_again_at_once_without_counting_an_attempt(shop: Shop) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    [claimed] = shop.store.claim(T0, LEASE, 10)

    shop.store.release(claimed)

    [again] = shop.store.claim(T0, LEASE, 10)
    assert again.attempt == 1


def test_an_endpoint_failing_for_five_days_is_disabled_and_a_success_resets_the_count(
    shop: Shop,
) -> None:
    endpoint = shop.endpoint()
    for _ in range(3):
        shop.place()
    fan_out_everything(shop.store)
    policy = DeliveryPolicy(schedule=(3600,) * 200)

    def attempt(at: datetime, outcome: SendOutcome) -> None:
        [claimed] = shop.store.claim(at, LEASE, 1)
        shop.store.record(policy.result(claimed, outcome, at=at, duration_ms=1))

    attempt(T0, SendOutcome(error="refused"))
    attempt(T0 + timedelta(days=4), SendOutcome(status_code=200))  # a success: a fresh start
    attempt(T0 + timedelta(days=5), SendOutcome(error="refused"))
    attempt(T0 + timedelta(days=9, hours=23), SendOutcome(error="refused"))
    still = shop.store.endpoint(endpoint)
    assert still is not None
    assert still.is_active
    attempt(T0 + timedelta(days=10), SendOutcome(error="refused"))

    disabled = shop.store.endpoint(endpoint)
    assert disabled is not None
    assert not disabled.is_active


def test_removing_an_endpoint_removes_its_deliveries(shop: Shop) -> None:
    endpoint = shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    [claimed] = shop.store.claim(T0, LEASE, 10)

    assert shop.store.remove_endpoint(endpoint)

    assert shop.store.delivery(claimed.delivery_id) is None
    assert not shop.store.remove_endpoint(endpoint)
    assert shop.store.stats().pending == 0


def test_the_oldest_pending_delivery_is_reported(shop: Shop) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store, at=T0)
    shop.place()
    fan_out_everything(shop.store, at=T0 + timedelta(minutes=1))

    stats = shop.store.stats()

    assert (stats.pending, stats.oldest_pending_created_at) == (2, T0)


def test_the_dashboard_reads_the_endpoints_disabled_or_with_failed_deliveries(
    shop: Shop,
) -> None:
    """The read unit of work's view of the webhook tables (the dashboard's "Integrations"):
    disabled endpoints first, then the most failed deliveries, healthy ones left out."""
    healthy = shop.endpoint(url="https://example.com/healthy")
    failing_most = shop.endpoint(url="https://example.com/most")
    failing_once = shop.endpoint(url="https://example.com/once")
    disabled = shop.endpoint(url="https://example.com/off")
    shop.store.change_endpoint(disabled, {"is_active": False})
    shop.place()
    shop.place()
    fan_out_everything(shop.store)
    final = DeliveryPolicy(schedule=())  # the first failure is the last: the delivery fails
    fail_once = True
    for claimed in shop.store.claim(T0, LEASE, 100):
        fails = claimed.endpoint_id == failing_most or (
            claimed.endpoint_id == failing_once and fail_once
        )
        if claimed.endpoint_id == failing_once and fails:
            fail_once = False
        outcome = SendOutcome(status_code=500 if fails else 204)
        shop.store.record(final.result(claimed, outcome, at=T0, duration_ms=2))

    with shop.uow.read() as reads:
        found = reads.webhook_endpoints_in_trouble(limit=10)
        first_two = reads.webhook_endpoints_in_trouble(limit=2)

    assert [(e.id, e.is_active, e.failed) for e in found.items] == [
        (disabled, False, 0),
        (failing_most, True, 2),
        (failing_once, True, 1),
    ]
    assert found.total == 3
    assert healthy not in [e.id for e in found.items]
    assert found.items[1].url == "https://example.com/most"
    assert ([e.id for e in first_two.items], first_two.total) == ([disabled, failing_most], 3)


def test_with_every_endpoint_healthy_the_dashboard_has_no_integration_in_trouble(
    shop: Shop,
) -> None:
    shop.endpoint()
    shop.place()
    fan_out_everything(shop.store)
    for claimed in shop.store.claim(T0, LEASE, 100):
        shop.store.record(result(claimed, SendOutcome(status_code=200)))
    with shop.uow.read() as reads:
        found = reads.webhook_endpoints_in_trouble(limit=10)
    assert (list(found.items), found.total) == ([], 0)
