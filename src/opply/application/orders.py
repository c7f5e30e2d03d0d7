"""Ordering use cases: place (all or nothing), list and read one's own orders, cancel."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from opply.application.dto import (
    OrderView,
    PageRequest,
    PlacedOrder,
    PlaceOrderCommand,
    StaffOrderView,
)
from opply.application.ports import Clock, OrderFilter, Page
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
            return uow.order_views.list_for_customer(
                customer_id, status, page.offset, page.page_size
            )


class GetMyOrder:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, order_id: int) -> OrderView:
        with self._uow as uow:
            view = uow.order_views.get_for_customer(order_id, customer_id)
            if view is None:
                raise OrderNotFound(order_id)
            return view


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


def _staff_views(uow: UnitOfWork, found: list[Order]) -> list[StaffOrderView]:
    customers = uow.users.get_many({o.customer_id for o in found})
    return [
        StaffOrderView(
            OrderView.of(o),
            o.customer_id,
            customers[o.customer_id].username if o.customer_id in customers else "?",
        )
        for o in found
    ]


class ListAllOrders:
    """Every customer's orders for staff, newest first, optionally one customer's or one status."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(
        self, customer_username: str | None, status: OrderStatus | None, page: PageRequest
    ) -> Page[StaffOrderView]:
        with self._uow as uow:
            customer_id = None
            if customer_username:
                customer = uow.users.get_by_username(customer_username)
                if customer is None:
                    return Page([], 0)
                customer_id = customer.id
            flt = OrderFilter(customer_id=customer_id, status=status)
            found = uow.orders.list_all(flt, page.offset, page.page_size)
            return Page(_staff_views(uow, list(found.items)), found.total)


class GetOrderAsStaff:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, order_id: int) -> StaffOrderView:
        with self._uow as uow:
            order = uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            return _staff_views(uow, [order])[0]


class CancelOrderAsStaff:
    """Staff cancel any customer's placed order (a phone call); the units go back to stock.

    The same rule as ``CancelMyOrder``: ``Order.cancel`` refuses anything but a placed order.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, order_id: int) -> StaffOrderView:
        with self._uow.for_write() as uow:
            order = uow.orders.get(order_id, for_update=True)
            if order is None:
                raise OrderNotFound(order_id)
            products = uow.products.get_for_update(set(order.product_ids()))
            order.cancel(products)
            view = _staff_views(uow, [order])[0]
            uow.commit()
            return view
