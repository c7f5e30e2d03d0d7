"""Webhooks: the staff's endpoints, and the delivery of order events to them.

The worker (``opply worker``) repeats three steps, each its own short transaction in the store
(``WebhookStore``): fan events out to deliveries, claim due deliveries under a lease, and,
after the HTTP attempt made outside any transaction, record its result. What the result means
(delivered, try again later, failed, endpoint disabled) is decided here (``DeliveryPolicy``);
how a message is written (the wire format) is the entrypoint's, given as ``render``; how it is
signed and sent is the sender adapter's (``WebhookSender``). See docs/architecture.md,
"Webhooks".
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from opply.application.dto import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    NewWebhookEndpoint,
    OrderEventView,
    Page,
    PageRequest,
    WebhookAttemptView,
    WebhookDeliveryView,
    WebhookEndpointView,
)
from opply.application.ports import Clock, UrlGuard, WebhookStore
from opply.domain.errors import (
    DeliveryNotFailed,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048
MAX_WEBHOOK_DESCRIPTION_LENGTH = 500
MAX_ERROR_LENGTH = 500
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
DISABLE_AFTER = timedelta(days=5)
ENDPOINT_FIELDS = ("url", "event_types", "description", "is_active")


def new_secret() -> str:
    """``whsec_`` and base64 of 32 random bytes, as Standard Webhooks' libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


# --- the staff's endpoints -------------------------------------------------------------------


class CreateWebhookEndpoint:
    def __init__(self, store: WebhookStore, guard: UrlGuard, clock: Clock) -> None:
        self._store, self._guard, self._clock = store, guard, clock

    def __call__(
        self, *, url: str, event_types: Sequence[str], description: str = ""
    ) -> WebhookEndpointView:
        self._guard.check(url)
        return self._store.add_endpoint(
            NewWebhookEndpoint(
                url=url,
                event_types=tuple(dict.fromkeys(event_types)),
                description=description,
                secret=new_secret(),
                created_at=self._clock.now(),
            )
        )


class ListWebhookEndpoints:
    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, page: PageRequest) -> Page[WebhookEndpointView]:
        return self._store.endpoint_page(page)


class GetWebhookEndpoint:
    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, endpoint_id: int) -> WebhookEndpointView:
        found = self._store.endpoint(endpoint_id)
        if found is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return found


class ChangeWebhookEndpoint:
    """Change some of ``ENDPOINT_FIELDS``; a new URL is checked as a new one is."""

    def __init__(self, store: WebhookStore, guard: UrlGuard) -> None:
        self._store, self._guard = store, guard

    def __call__(self, endpoint_id: int, changes: Mapping[str, Any]) -> WebhookEndpointView:
        unknown = set(changes) - set(ENDPOINT_FIELDS)
        assert not unknown, f"not fields of an endpoint: {unknown}"
        if "url" in changes:
            self._guard.check(changes["url"])
        kept = dict(changes)
        if "event_types" in kept:
            kept["event_types"] = tuple(dict.fromkeys(kept["event_types"]))
        found = self._store.change_endpoint(endpoint_id, kept)
        if found is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return found


class RotateWebhookSecret:
    """A new secret at once: the next attempt of every delivery is signed with it."""

    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, endpoint_id: int) -> WebhookEndpointView:
        found = self._store.change_endpoint(endpoint_id, {"secret": new_secret()})
        if found is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return found


class DeleteWebhookEndpoint:
    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, endpoint_id: int) -> None:
        if not self._store.remove_endpoint(endpoint_id):
            raise WebhookEndpointNotFound(endpoint_id)


class ListWebhookDeliveries:
    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, endpoint_id: int, page: PageRequest) -> Page[WebhookDeliveryView]:
        if self._store.endpoint(endpoint_id) is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return self._store.delivery_page(endpoint_id, page)


class GetWebhookDelivery:
    """A delivery and its attempts, oldest first (the admin's page of it)."""

    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def __call__(self, delivery_id: int) -> tuple[WebhookDeliveryView, list[WebhookAttemptView]]:
        found = self._store.delivery(delivery_id)
        if found is None:
            raise WebhookDeliveryNotFound(delivery_id)
        return found, self._store.attempts(delivery_id)


class RetryWebhookDelivery:
    """A failed delivery goes back to the queue, due now; its attempts so far are kept, so a
    failure of this attempt makes it failed again at once."""

    def __init__(self, store: WebhookStore, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def __call__(self, delivery_id: int) -> WebhookDeliveryView:
        requeued = self._store.requeue_failed(delivery_id, self._clock.now())
        if requeued is not None:
            return requeued
        found = self._store.delivery(delivery_id)
        if found is None:
            raise WebhookDeliveryNotFound(delivery_id)
        raise DeliveryNotFailed(delivery_id, found.status.value)


# --- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendOutcome:
    """What one HTTP attempt gave: a status code (and a ``Retry-After`` in seconds, if the
    receiver sent one), or an error before any answer (refused, timed out, unsafe address)."""

    status_code: int | None = None
    retry_after: float | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    def send(self, *, url: str, secret: str, message_id: str, body: bytes) -> SendOutcome:
        """POST ``body`` to ``url`` signed with ``secret`` (Standard Webhooks), never raising."""
        ...


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """What an attempt's outcome means. ``schedule[n]`` is the wait after the (n+1)th failed
    attempt; past the schedule the delivery is failed. A ``Retry-After`` longer than the
    scheduled wait is honoured (up to the schedule's longest wait)."""

    schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    disable_after: timedelta = DISABLE_AFTER

    def result(
        self, claimed: ClaimedDelivery, outcome: SendOutcome, *, at: datetime, duration_ms: int
    ) -> AttemptResult:
        status = DeliveryStatus.DELIVERED
        next_attempt_at = None
        if not outcome.delivered:
            status = DeliveryStatus.FAILED
            if claimed.attempt <= len(self.schedule):
                wait = float(self.schedule[claimed.attempt - 1])
                if outcome.retry_after is not None:
                    wait = max(wait, min(outcome.retry_after, float(max(self.schedule))))
                status = DeliveryStatus.PENDING
                next_attempt_at = at + timedelta(seconds=wait)
        error = outcome.error
        if error is None and not outcome.delivered:
            error = f"HTTP {outcome.status_code}"
        return AttemptResult(
            delivery_id=claimed.delivery_id,
            attempt=claimed.attempt,
            at=at,
            status=status,
            status_code=outcome.status_code,
            error=None if error is None else error[:MAX_ERROR_LENGTH],
            next_attempt_at=next_attempt_at,
            duration_ms=duration_ms,
            disable_endpoint=outcome.status_code == 410,
            failing_cutoff=at - self.disable_after,
            endpoint_failing=claimed.endpoint_failing,
        )


Render = Callable[[OrderEventView], bytes]


class DeliverWebhooks:
    """The worker's steps: ``fan_out``, ``claim``, and ``attempt`` one claimed delivery (send
    it outside any transaction, then record the result)."""

    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        clock: Clock,
        render: Render,
        policy: DeliveryPolicy,
        lease: timedelta,
    ) -> None:
        self._store, self._sender, self._clock = store, sender, clock
        self._render, self._policy, self._lease = render, policy, lease

    def fan_out(self, limit: int = 500) -> int | None:
        return self._store.fan_out(self._clock.now(), limit)

    def claim(self, limit: int) -> list[ClaimedDelivery]:
        return self._store.claim(self._clock.now(), self._lease, limit)

    def attempt(self, claimed: ClaimedDelivery) -> AttemptResult:
        started = time.perf_counter()
        try:
            body = self._render(claimed.event)
        except Exception as error:  # a kept event the schema cannot write: a failed attempt
            outcome = SendOutcome(error=f"could not render the event: {error!r}")
        else:
            outcome = self._sender.send(
                url=claimed.url,
                secret=claimed.secret,
                message_id=str(claimed.event.id),
                body=body,
            )
        duration_ms = round((time.perf_counter() - started) * 1000)
        result = self._policy.result(
            claimed, outcome, at=self._clock.now(), duration_ms=duration_ms
        )
        self._store.record(result)
        return result

    def release(self, claimed: ClaimedDelivery) -> None:
        self._store.release(claimed)


def lease_for(timeout: float) -> timedelta:
    """How long a claimed delivery is a worker's: its attempt's timeout twice, and 5 s to
    record the result. Past it, a worker that died is taken over."""
    return timedelta(seconds=2 * timeout + 5)
