"""Webhook use cases and the delivery policy, on the in-memory store (no database, no HTTP)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from opply.adapters.memory import (
    FakePasswordHasher,
    FixedClock,
    InMemoryStore,
    InMemoryUnitOfWork,
)
from opply.adapters.memory_webhooks import InMemoryWebhookStore
from opply.adapters.webhook_http import UrlPolicy
from opply.application.dto import (
    ClaimedDelivery,
    DeliveryStatus,
    FeedPosition,
    NewProduct,
    NewUser,
    OrderEventView,
    PageRequest,
    PlaceOrderCommand,
)
from opply.application.orders import PlaceOrder
from opply.application.products import CreateProduct
from opply.application.users import CreateUser
from opply.application.webhooks import (
    ChangeWebhookEndpoint,
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    DeliverWebhooks,
    DeliveryPolicy,
    GetWebhookEndpoint,
    ListWebhookDeliveries,
    RetryWebhookDelivery,
    RotateWebhookSecret,
    SendOutcome,
    lease_for,
    new_secret,
)
from opply.domain.errors import (
    UnsafeWebhookUrl,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from opply.domain.model import LineRequest

AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
PRODUCTION = UrlPolicy(allow_http=False, allow_private=False)


@pytest.fixture
def store() -> InMemoryWebhookStore:
    return InMemoryWebhookStore(InMemoryStore())


def test_a_secret_is_whsec_and_base64_of_32_random_bytes() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_a_new_endpoint_is_active_with_each_event_type_once(store: InMemoryWebhookStore) -> None:
    endpoint = CreateWebhookEndpoint(store, PRODUCTION, FixedClock(AT))(
        url="https://erp.example.com/h",
        event_types=["order.placed", "order.shipped", "order.placed"],
    )

    assert endpoint.is_active
    assert endpoint.event_types == ("order.placed", "order.shipped")
    assert endpoint.created_at == AT
    assert GetWebhookEndpoint(store)(endpoint.id) == endpoint


def test_an_unsafe_url_is_refused_on_create_and_on_change(store: InMemoryWebhookStore) -> None:
    create = CreateWebhookEndpoint(store, PRODUCTION, FixedClock(AT))
    with pytest.raises(UnsafeWebhookUrl):
        create(url="http://erp.example.com/h", event_types=["order.placed"])
    endpoint = create(url="https://erp.example.com/h", event_types=["order.placed"])

    with pytest.raises(UnsafeWebhookUrl):
        ChangeWebhookEndpoint(store, PRODUCTION)(endpoint.id, {"url": "https://10.0.0.1/"})
    assert GetWebhookEndpoint(store)(endpoint.id).url == "https://erp.example.com/h"


def test_rotating_gives_a_new_secret_and_unknown_endpoints_are_not_found(
    store: InMemoryWebhookStore,
) -> None:
    endpoint = CreateWebhookEndpoint(store, PRODUCTION, FixedClock(AT))(
        url="https://erp.example.com/h", event_types=["order.placed"]
    )

    assert RotateWebhookSecret(store)(endpoint.id).secret != endpoint.secret
    DeleteWebhookEndpoint(store)(endpoint.id)
    for call in (
        lambda: GetWebhookEndpoint(store)(endpoint.id),
        lambda: RotateWebhookSecret(store)(endpoint.id),
        lambda: DeleteWebhookEndpoint(store)(endpoint.id),
        lambda: ChangeWebhookEndpoint(store, PRODUCTION)(endpoint.id, {"is_active": False}),
        lambda: ListWebhookDeliveries(store)(endpoint.id, PageRequest()),
    ):
        with pytest.raises(WebhookEndpointNotFound):
            call()


def test_retrying_an_unknown_delivery_is_not_found(store: InMemoryWebhookStore) -> None:
    with pytest.raises(WebhookDeliveryNotFound):
        RetryWebhookDelivery(store, FixedClock(AT))(7)


def _claimed(attempt: int) -> ClaimedDelivery:
    # The policy reads the attempt number only, never the order.
    event = OrderEventView(
        id=1, type="order.placed", occurred_at=AT, order=None, position=FeedPosition(0, 1)
    )
    return ClaimedDelivery(
        delivery_id=5, attempt=attempt, endpoint_id=1, url="", secret="", event=event
    )


POLICY = DeliveryPolicy(schedule=(5, 300, 1800))


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(code: int) -> None:
    result = POLICY.result(_claimed(1), SendOutcome(status_code=code), at=AT, duration_ms=3)

    assert (result.status, result.next_attempt_at, result.error) == (
        DeliveryStatus.DELIVERED,
        None,
        None,
    )


@pytest.mark.parametrize(
    "outcome",
    [
        SendOutcome(status_code=301),
        SendOutcome(status_code=404),
        SendOutcome(status_code=500),
        SendOutcome(error="timeout after 15 s"),
        SendOutcome(error="ConnectError: refused"),
    ],
)
def test_anything_else_waits_for_the_next_step_of_the_schedule(outcome: SendOutcome) -> None:
    waits = [
        POLICY.result(_claimed(n), outcome, at=AT, duration_ms=1).next_attempt_at for n in (1, 2, 3)
    ]
    last = POLICY.result(_claimed(4), outcome, at=AT, duration_ms=1)

    assert waits == [AT + timedelta(seconds=s) for s in (5, 300, 1800)]
    assert (last.status, last.next_attempt_at) == (DeliveryStatus.FAILED, None)


def test_a_retry_after_is_honoured_when_longer_and_capped_by_the_longest_wait() -> None:
    def wait(retry_after: float) -> timedelta:
        outcome = SendOutcome(status_code=429, retry_after=retry_after)
        result = POLICY.result(_claimed(1), outcome, at=AT, duration_ms=1)
        assert result.next_attempt_at is not None
        return result.next_attempt_at - AT

    assert wait(1) == timedelta(seconds=5)
    assert wait(60) == timedelta(seconds=60)
    assert wait(86_400) == timedelta(seconds=1800)


def test_410_gone_asks_to_disable_the_endpoint() -> None:
    gone = POLICY.result(_claimed(1), SendOutcome(status_code=410), at=AT, duration_ms=1)
    other = POLICY.result(_claimed(1), SendOutcome(status_code=404), at=AT, duration_ms=1)

    assert (gone.disable_endpoint, other.disable_endpoint) == (True, False)
    assert gone.failing_cutoff == AT - timedelta(days=5)


def test_a_lease_outlasts_an_attempt_and_its_record() -> None:
    assert lease_for(15) == timedelta(seconds=35)


def test_an_event_that_cannot_be_rendered_is_a_failed_attempt_not_a_stuck_delivery() -> None:
    memory = InMemoryStore()
    uow = InMemoryUnitOfWork(memory)
    store = InMemoryWebhookStore(memory)
    clock = FixedClock(AT)
    CreateWebhookEndpoint(store, PRODUCTION, clock)(
        url="https://erp.example.com/h", event_types=["order.placed"]
    )
    customer = CreateUser(uow, FakePasswordHasher())(
        NewUser(username="ann", password="a-long-test-password")
    ).id
    oats = NewProduct(name="Oats", price=Decimal("1.00"), quantity_in_stock=5)
    product = CreateProduct(uow)(oats).id
    PlaceOrder(uow, clock, "EUR")(
        PlaceOrderCommand(customer_id=customer, lines=[LineRequest(product_id=product, quantity=1)])
    )

    class Unreachable:
        def send(self, **_: object) -> SendOutcome:
            raise AssertionError("nothing is sent")

    def broken(_event: object) -> bytes:
        raise ValueError("no schema for this")

    deliver = DeliverWebhooks(store, Unreachable(), clock, broken, POLICY, lease_for(1))
    deliver.fan_out()
    [claimed] = deliver.claim(1)
    result = deliver.attempt(claimed)

    assert result.status is DeliveryStatus.PENDING
    assert "could not render the event" in (result.error or "")
