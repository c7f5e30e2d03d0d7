"""The webhook store in memory: the unit tests' double of ``SqlWebhookStore``, held to the same
contract tests. Its rows live beside an ``InMemoryStore`` (whose outbox it reads) and every
method runs under that store's lock, as each SQL method is its own transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from opply.adapters.memory import InMemoryStore, WebhookDeliveryRow, WebhookEndpointRow
from opply.application.dto import (
    AttemptResult,
    ClaimedDelivery,
    CustomerView,
    DeliveryStats,
    DeliveryStatus,
    FeedPosition,
    NewWebhookEndpoint,
    OrderEventView,
    Page,
    PageRequest,
    WebhookAttemptView,
    WebhookDeliveryView,
    WebhookEndpointView,
)

# The rows live in the InMemoryStore, where the read unit of work finds them (the dashboard).
_Endpoint = WebhookEndpointRow
_Delivery = WebhookDeliveryRow


def _endpoint_view(row: _Endpoint) -> WebhookEndpointView:
    return WebhookEndpointView(**{name: getattr(row, name) for name in WebhookEndpointView._fields})


def _delivery_view(row: _Delivery) -> WebhookDeliveryView:
    return WebhookDeliveryView(**{name: getattr(row, name) for name in WebhookDeliveryView._fields})


class InMemoryWebhookStore:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._endpoints = store.webhook_endpoints
        self._deliveries = store.webhook_deliveries
        self._ids = {"endpoint": 0, "delivery": 0}
        # Every committed event is final here (writers take turns): the cursor is an id.
        self._cursor = max((event_id for event_id, _ in store.tables.events), default=0)

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # --- endpoints ---

    def add_endpoint(self, new: NewWebhookEndpoint) -> WebhookEndpointView:
        with self._store.lock:
            row = _Endpoint(id=self._next("endpoint"), is_active=True, **dataclasses.asdict(new))
            row.event_types = tuple(new.event_types)
            self._endpoints[row.id] = row
            return _endpoint_view(row)

    def endpoint(self, endpoint_id: int) -> WebhookEndpointView | None:
        with self._store.lock:
            row = self._endpoints.get(endpoint_id)
            return None if row is None else _endpoint_view(row)

    def endpoint_page(self, page: PageRequest) -> Page[WebhookEndpointView]:
        with self._store.lock:
            rows = sorted(self._endpoints.values(), key=lambda r: r.id, reverse=True)
            chosen = rows[page.offset : page.offset + page.page_size]
            return Page(items=[_endpoint_view(r) for r in chosen], total=len(rows))

    def change_endpoint(
        self, endpoint_id: int, changes: Mapping[str, Any]
    ) -> WebhookEndpointView | None:
        with self._store.lock:
            row = self._endpoints.get(endpoint_id)
            if row is None:
                return None
            for name, value in changes.items():
                setattr(row, name, tuple(value) if name == "event_types" else value)
            if changes.get("is_active"):
                row.failing_since = None  # enabled again: a fresh start
            return _endpoint_view(row)

    def remove_endpoint(self, endpoint_id: int) -> bool:
        with self._store.lock:
            if self._endpoints.pop(endpoint_id, None) is None:
                return False
            for delivery_id in [
                d.id for d in self._deliveries.values() if d.endpoint_id == endpoint_id
            ]:
                del self._deliveries[delivery_id]
            return True

    def delivery(self, delivery_id: int) -> WebhookDeliveryView | None:
        with self._store.lock:
            row = self._deliveries.get(delivery_id)
            return None if row is None else _delivery_view(row)

    def delivery_page(self, endpoint_id: int, page: PageRequest) -> Page[WebhookDeliveryView]:
        with self._store.lock:
            rows = sorted(
                (d for d in self._deliveries.values() if d.endpoint_id == endpoint_id),
                key=lambda d: d.id,
                reverse=True,
            )
            chosen = rows[page.offset : page.offset + page.page_size]
            return Page(items=[_delivery_view(d) for d in chosen], total=len(rows))

    def attempts(self, delivery_id: int) -> list[WebhookAttemptView]:
        with self._store.lock:
            row = self._deliveries.get(delivery_id)
            return [] if row is None else list(row.tried)

    def requeue_failed(self, delivery_id: int, at: datetime) -> WebhookDeliveryView | None:
        with self._store.lock:
            row = self._deliveries.get(delivery_id)
            if row is None or row.status is not DeliveryStatus.FAILED:
                return None
            row.status, row.next_attempt_at, row.locked_until = DeliveryStatus.PENDING, at, None
            return _delivery_view(row)

    # --- the worker ---

    def fan_out(self, at: datetime, limit: int) -> int | None:
        with self._store.lock:
            events = [(i, e) for i, e in self._store.tables.events if i > self._cursor][:limit]
            active = [e for e in self._endpoints.values() if e.is_active]
            for event_id, event in events:
                for endpoint in active:
                    if event.type in endpoint.event_types:
                        row = _Delivery(
                            id=self._next("delivery"),
                            endpoint_id=endpoint.id,
                            event_id=event_id,
                            event_type=event.type,
                            status=DeliveryStatus.PENDING,
                            attempts=0,
                            last_status_code=None,
                            last_error=None,
                            next_attempt_at=at,
                            created_at=at,
                        )
                        self._deliveries[row.id] = row
            if events:
                self._cursor = events[-1][0]
            return len(events)

    def claim(self, at: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        with self._store.lock:
            due = sorted(
                (
                    d
                    for d in self._deliveries.values()
                    if d.status is DeliveryStatus.PENDING
                    and d.next_attempt_at is not None
                    and d.next_attempt_at <= at
                    and (d.locked_until is None or d.locked_until < at)
                    and self._endpoints[d.endpoint_id].is_active
                ),
                key=lambda d: (d.next_attempt_at or at, d.id),
            )[:limit]
            events = dict(self._store.tables.events)
            claimed = []
            for row in due:
                row.attempts += 1
                row.locked_until = at + lease
                endpoint = self._endpoints[row.endpoint_id]
                event = events[row.event_id]
                user = self._store.tables.users[event.customer_id]
                claimed.append(
                    ClaimedDelivery(
                        delivery_id=row.id,
                        attempt=row.attempts,
                        endpoint_id=endpoint.id,
                        url=endpoint.url,
                        secret=endpoint.secret,
                        endpoint_failing=endpoint.failing_since is not None,
                        event=OrderEventView(
                            id=row.event_id,
                            type=event.type,
                            occurred_at=event.occurred_at,
                            order=event.order._replace(
                                customer=CustomerView(id=user.id or 0, username=user.username)
                            ),
                            position=FeedPosition(tx=0, id=row.event_id),
                        ),
                    )
                )
            return claimed

    def record(self, result: AttemptResult) -> bool:
        with self._store.lock:
            row = self._deliveries.get(result.delivery_id)
            if row is None or row.attempts != result.attempt:
                return False
            row.status = result.status
            row.last_status_code = result.status_code
            row.last_error = result.error
            row.next_attempt_at = result.next_attempt_at
            row.locked_until = None
            row.tried.append(
                WebhookAttemptView(
                    attempted_at=result.at,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )
            endpoint = self._endpoints[row.endpoint_id]
            if result.status is DeliveryStatus.DELIVERED:
                endpoint.failing_since = None
            else:
                endpoint.failing_since = endpoint.failing_since or result.at
                if endpoint.failing_since <= result.failing_cutoff:
                    endpoint.is_active = False
            if result.disable_endpoint:
                endpoint.is_active = False
            return True

    def release(self, claimed: ClaimedDelivery) -> None:
        with self._store.lock:
            row = self._deliveries.get(claimed.delivery_id)
            if row is not None and row.attempts == claimed.attempt:
                row.attempts -= 1
                row.locked_until = None

    def stats(self) -> DeliveryStats:
        with self._store.lock:
            rows = list(self._deliveries.values())
            pending = [d.created_at for d in rows if d.status is DeliveryStatus.PENDING]
            return DeliveryStats(
                pending=len(pending),
                delivered=sum(d.status is DeliveryStatus.DELIVERED for d in rows),
                failed=sum(d.status is DeliveryStatus.FAILED for d in rows),
                oldest_pending_created_at=min(pending, default=None),
            )
