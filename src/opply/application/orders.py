"""Ordering use cases: place (all or nothing), list and read one's own orders, cancel."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from opply.application.dto import OrderView, PageRequest, PlacedOrder, PlaceOrderCommand
from opply.application.ports import Clock, Page
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import (
    IdempotencyKeyReused,
    OrderNotFound,
    RequestInProgress,
)
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderStatus,
    check_line_requests,
)


def request_fingerprint(cmd: PlaceOrderCommand) -> str:
    """Digest of what the order asks for; the same lines in another order are the same request."""
    canonical = sorted((line.product_id, line.quantity) for line in cmd.lines)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


class PlaceOrder:
    """Take stock for every line and record the order, in one transaction, or change nothing."""

    def __init__(self, uow: UnitOfWork, clock: Clock, currency: str) -> None:
        self._uow = uow
        self._clock = clock
        self._currency = currency

    def __call__(self, cmd: PlaceOrderCommand) -> PlacedOrder:
        check_line_requests(cmd.lines)  # fail fast, before any lock is taken
        fingerprint = request_fingerprint(cmd) if cmd.idempotency_key else ""
        with self._uow.for_write() as uow:
            now = self._clock.now()
            if cmd.idempotency_key is not None:
                replay = self._claim_or_replay(uow, cmd, fingerprint, now)
                if replay is not None:
                    return replay
            products = uow.products.get_for_update({line.product_id for line in cmd.lines})
            order = Order.place(cmd.customer_id, cmd.lines, products, now, self._currency)
            uow.orders.add(order)
            view = OrderView.of(order) if order.id is not None else None
            if view is None:
                raise AssertionError("the repository must assign the order id on add")
            if cmd.idempotency_key is not None:
                uow.idempotency.save(
                    IdempotencyRecord(
                        customer_id=cmd.customer_id,
                        key=cmd.idempotency_key,
                        fingerprint=fingerprint,
                        created_at=order.created_at,
                        order_id=view.id,
                        response=view.to_snapshot(),
                    )
                )
            uow.commit()
            return PlacedOrder(view)

    @staticmethod
    def _claim_or_replay(
        uow: UnitOfWork, cmd: PlaceOrderCommand, fingerprint: str, now: datetime
    ) -> PlacedOrder | None:
        assert cmd.idempotency_key is not None
        if uow.idempotency.claim(cmd.customer_id, cmd.idempotency_key, now):
            return None
        record = uow.idempotency.get(cmd.customer_id, cmd.idempotency_key)
        if record is None:
            # Claimed by a transaction that is still running (storage that does not wait).
            raise RequestInProgress()
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        return PlacedOrder(OrderView.from_snapshot(record.response), replayed=True)


class ListMyOrders:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(
        self, customer_id: int, status: OrderStatus | None, page: PageRequest
    ) -> Page[OrderView]:
        with self._uow as uow:
            found = uow.orders.list_for_customer(customer_id, status, page.offset, page.page_size)
            return Page([OrderView.of(o) for o in found.items], found.total)


class GetMyOrder:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, order_id: int) -> OrderView:
        with self._uow as uow:
            order = uow.orders.get_for_customer(order_id, customer_id)
            if order is None:
                raise OrderNotFound(order_id)
            return OrderView.of(order)


class CancelMyOrder:
    """Cancel a placed order and put its units back, atomically."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, order_id: int) -> OrderView:
        with self._uow.for_write() as uow:
            order = uow.orders.get_for_customer(order_id, customer_id, for_update=True)
            if order is None:
                raise OrderNotFound(order_id)
            products = uow.products.get_for_update(set(order.product_ids()))
            order.cancel(products)
            uow.commit()
            return OrderView.of(order)
