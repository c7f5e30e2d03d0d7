"""Delivering webhooks over real HTTP to receivers on 127.0.0.1: Standard Webhooks signatures
(checked with the specification's reference package), retries, Retry-After, 410, timeouts,
refused connections, the SSRF rules, and the worker's loop and graceful stop. The store is the
in-memory one (held to the SQL stores by test_webhook_store.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from opply.adapters.clock import SystemClock
from opply.adapters.memory import FakePasswordHasher, InMemoryStore, InMemoryUnitOfWork
from opply.adapters.memory_webhooks import InMemoryWebhookStore
from opply.adapters.webhook_http import HttpxWebhookSender, UrlPolicy
from opply.application.dto import (
    DeliveryStatus,
    NewProduct,
    NewUser,
    PageRequest,
    PlaceOrderCommand,
)
from opply.application.orders import PlaceOrder
from opply.application.products import CreateProduct
from opply.application.users import CreateUser
from opply.application.webhooks import (
    CreateWebhookEndpoint,
    DeliverWebhooks,
    DeliveryPolicy,
    lease_for,
)
from opply.domain.errors import UnsafeWebhookUrl
from opply.domain.model import LineRequest
from opply.entrypoints.webhook_body import render_webhook_event
from opply.entrypoints.worker import Worker
from tests.integration.receivers import Answer, Receiver, receiving

OPEN = UrlPolicy(allow_http=True, allow_private=True)
CLOSED = UrlPolicy(allow_http=False, allow_private=False)


class Shop:
    """Orders, an endpoint and the delivery steps, on the in-memory store."""

    def __init__(self, *, schedule: tuple[int, ...] = (0, 0, 0), timeout: float = 2.0) -> None:
        self.memory = InMemoryStore()
        self.uow = InMemoryUnitOfWork(self.memory)
        self.store = InMemoryWebhookStore(self.memory)
        self.clock = SystemClock()
        self.customer = CreateUser(self.uow, FakePasswordHasher())(
            NewUser(username="ann", password="a-long-test-password", is_staff=False)
        ).id
        self.product = CreateProduct(self.uow)(
            NewProduct(name="Oats", price=Decimal("2.50"), quantity_in_stock=1000)
        ).id
        self.sender = HttpxWebhookSender(policy=OPEN, timeout=timeout)
        self.deliver = DeliverWebhooks(
            store=self.store,
            sender=self.sender,
            clock=self.clock,
            render=render_webhook_event,
            policy=DeliveryPolicy(schedule=schedule),
            lease=lease_for(timeout),
        )

    def endpoint(self, url: str) -> Any:
        return CreateWebhookEndpoint(self.store, OPEN, self.clock)(
            url=url, event_types=["order.placed"], description="test"
        )

    def place(self) -> int:
        place = PlaceOrder(self.uow, self.clock, "EUR")
        line = LineRequest(product_id=self.product, quantity=1)
        return place(PlaceOrderCommand(customer_id=self.customer, lines=[line])).order_id

    def step(self) -> list[Any]:
        """Fan out, claim what is due and attempt each: the worker's loop, once."""
        self.deliver.fan_out()
        return [self.deliver.attempt(claimed) for claimed in self.deliver.claim(10)]


@pytest.fixture
def shop() -> Iterator[Shop]:
    made = Shop()
    yield made
    made.sender.close()


def test_a_delivery_is_signed_as_standard_webhooks_verifies_it_with_the_order_as_staff_see_it(
    shop: Shop,
) -> None:
    with receiving() as receiver:
        endpoint = shop.endpoint(receiver.url)
        order_id = shop.place()
        [result] = shop.step()
        [got] = receiver.wait_for(1)

    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert result.status is DeliveryStatus.DELIVERED
    assert payload["type"] == "order.placed"
    assert got.headers["webhook-id"] == str(payload["id"])
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["Content-Type"] == "application/json"
    order = payload["data"]["order"]
    assert (order["id"], order["status"]) == (order_id, "placed")
    assert order["customer"] == {"id": shop.customer, "username": "ann"}
    assert payload["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "B" * 43 + "=").verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(got.body.replace(b"placed", b"shiped"), got.headers)


def test_a_failed_attempt_is_sent_again_with_the_same_webhook_id_until_a_2xx(shop: Shop) -> None:
    answers = [Answer(status=503), Answer(status=500), Answer(status=200)]
    with receiving(lambda n: answers[n]) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        for _ in range(3):
            shop.step()
        got = receiver.wait_for(3)

    assert len({r.headers["webhook-id"] for r in got}) == 1
    [delivery] = shop.store.delivery_page(1, PageRequest()).items
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        3,
        200,
    )
    assert [a.status_code for a in shop.store.attempts(delivery.id)] == [503, 500, 200]


def test_a_retry_after_longer_than_the_scheduled_wait_is_honoured() -> None:
    shop = Shop(schedule=(5, 300))
    with receiving(lambda _n: Answer(status=429, headers={"Retry-After": "120"})) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        [first] = shop.step()
    shop.sender.close()
    assert first.status is DeliveryStatus.PENDING
    assert first.next_attempt_at is not None
    assert (first.next_attempt_at - first.at).total_seconds() == pytest.approx(120)
    assert shop.store.claim(first.at + timedelta(seconds=119), timedelta(seconds=9), 1) == []


def test_a_retry_after_as_a_date_is_read_and_capped_by_the_longest_scheduled_wait() -> None:
    shop = Shop(schedule=(5, 60))
    later = datetime.now(UTC) + timedelta(hours=3)
    answer = Answer(
        status=503, headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )
    with receiving(lambda _n: answer) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        [first] = shop.step()
    shop.sender.close()
    assert first.next_attempt_at is not None
    assert (first.next_attempt_at - first.at).total_seconds() == pytest.approx(60)


def test_the_last_failed_attempt_fails_the_delivery() -> None:
    shop = Shop(schedule=(0,))
    with receiving(lambda _n: Answer(status=500)) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        [first] = shop.step()
        [second] = shop.step()
    assert (first.status, second.status) == (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
    assert second.next_attempt_at is None
    shop.sender.close()


def test_410_gone_disables_the_endpoint(shop: Shop) -> None:
    with receiving(lambda _n: Answer(status=410)) as receiver:
        endpoint = shop.endpoint(receiver.url)
        shop.place()
        shop.step()
        shop.place()
        assert shop.step() == []
        receiver.wait_for(1)

    found = shop.store.endpoint(endpoint.id)
    assert found is not None
    assert not found.is_active


def test_a_refused_connection_is_retried_and_arrives_once_the_receiver_is_up(
    shop: Shop,
) -> None:
    receiver = Receiver()
    shop.endpoint(receiver.url)
    shop.place()
    [refused] = shop.step()
    assert refused.status is DeliveryStatus.PENDING
    assert refused.status_code is None
    assert "ConnectError" in (refused.error or "")
    receiver.start()
    try:
        [delivered] = shop.step()
        receiver.wait_for(1)
    finally:
        receiver.stop()
    assert delivered.status is DeliveryStatus.DELIVERED


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt() -> None:
    shop = Shop(timeout=0.3)
    with receiving(lambda _n: Answer(delay=1.0)) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        [slow] = shop.step()
    assert slow.status is DeliveryStatus.PENDING
    assert slow.error == "timeout after 0.3 s"
    assert slow.duration_ms < 900
    shop.sender.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # http where only https is allowed
        "ftp://hooks.example.com/x",
        "https:///no-host",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://api.localhost/x",
        "https://10.1.2.3/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://100.64.0.1/x",  # carrier-grade NAT
        "https://0.0.0.0/x",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/x",  # AWS metadata over IPv6
        "https://[fe80::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://224.0.0.1/x",
        "https://hooks.example.com:99999/x",
        "https://hooks example.com/x",
        "https://hooks.example.com%2F@127.0.0.1/x",
        "https://under_score.example.com/x",
        "https://example.com/" + "x" * 2048,
    ],
)
def test_an_unsafe_url_is_refused_when_saved(url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl):
        CLOSED.check(url)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/x", "https://93.184.216.34:8443/x", "https://[2606:4700::1]/"],
)
def test_a_public_https_url_is_accepted(url: str) -> None:
    CLOSED.check(url)


def test_development_accepts_a_local_http_receiver() -> None:
    OPEN.check("http://127.0.0.1:9000/hooks")


def _resolving_to(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_a_name_that_resolves_to_an_internal_address_is_not_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "rebound.example.com", "127.0.0.1")
    with receiving() as receiver:
        url = f"https://rebound.example.com:{receiver.port}/hooks"
        CLOSED.check(url)  # a name passes when saved: its address is checked when sending
        sender = HttpxWebhookSender(policy=CLOSED, timeout=1)
        outcome = sender.send(url=url, secret="whsec_" + "A" * 44, message_id="1", body=b"{}")
        sender.close()
        time.sleep(0.1)
        assert receiver.received == []
    assert outcome.status_code is None
    assert (outcome.error or "").startswith("unsafe_webhook_url")


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "hooks.example.com", "127.0.0.1")
    with receiving() as receiver:
        url = f"http://hooks.example.com:{receiver.port}/hooks?x=1"
        sender = HttpxWebhookSender(policy=OPEN, timeout=1)
        outcome = sender.send(url=url, secret="whsec_" + "A" * 44, message_id="7", body=b"{}")
        sender.close()
        [got] = receiver.wait_for(1)
    assert outcome.status_code == 204
    assert got.headers["Host"] == f"hooks.example.com:{receiver.port}"
    assert got.headers["webhook-id"] == "7"


def test_the_worker_delivers_everything_then_stops_when_told(shop: Shop) -> None:
    with receiving() as receiver:
        shop.endpoint(receiver.url)
        for _ in range(20):
            shop.place()
        worker = Worker(shop.deliver, concurrency=4, poll_interval=0.05)
        thread = threading.Thread(target=worker.run)
        thread.start()
        got = receiver.wait_for(20)
        worker.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert len({r.headers["webhook-id"] for r in got}) == 20
    assert shop.store.stats().delivered == 20


def test_a_stopping_worker_finishes_and_records_the_attempt_in_flight(shop: Shop) -> None:
    with receiving(lambda _n: Answer(delay=0.8)) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        worker = Worker(shop.deliver, concurrency=2, poll_interval=0.05)
        thread = threading.Thread(target=worker.run)
        thread.start()
        receiver.wait_for(1)
        worker.stop()  # while the receiver is still answering
        thread.join(timeout=5)
    assert not thread.is_alive()
    stats = shop.store.stats()
    assert (stats.delivered, stats.pending) == (1, 0)


def test_each_attempt_is_one_log_line_with_the_delivery_and_its_outcome(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="opply.webhooks")
    with receiving(lambda _n: Answer(status=202)) as receiver:
        shop.endpoint(receiver.url)
        shop.place()
        worker = Worker(shop.deliver, concurrency=1, poll_interval=0.05)
        thread = threading.Thread(target=worker.run)
        thread.start()
        receiver.wait_for(1)
        deadline = time.monotonic() + 5
        while not [r for r in caplog.records if r.message == "webhook attempt"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        worker.stop()
        thread.join(timeout=5)
    [line] = [r for r in caplog.records if r.message == "webhook attempt"]
    fields = {k: getattr(line, k) for k in ("delivery_id", "attempt", "status", "status_code")}
    assert fields == {"delivery_id": 1, "attempt": 1, "status": "delivered", "status_code": 202}
    assert json.dumps(line.duration_ms)
