"""Ordering use cases: place (all or nothing, idempotent with a key) or reorder, read, list and
cancel one's own orders and read their invoices; staff read, list, move on (shipping invoices
them) and cancel anyone's."""

from __future__ import annotations

import enum
import hashlib
import json

from opply.application.dto import (
    CustomerView,
    Invoice,
    OrderFilter,
    OrderView,
    Page,
    PageRequest,
    PlacedOrder,
    PlaceOrderCommand,
    view_of_order,
)
from opply.application.plain import from_plain, to_plain
from opply.application.ports import Clock, InvoiceRenderer
from opply.application.unit_of_work import UnitOfWork, WriteUnitOfWork, retried_if_nothing_kept
from opply.domain.errors import (
    IdempotencyKeyReused,
    InvoiceNotIssued,
    OrderNotFound,
    RequestInProgress,
    UnknownAddress,
)
from opply.domain.model import (
    IdempotencyRecord,
    LineRequest,
    Order,
    OrderStatus,
    check_line_requests,
    invoice_number,
)


def request_fingerprint(cmd: PlaceOrderCommand) -> str:
    """Digest of what the order asks for; the same lines in another order are the same request.
    An order without an ``address_id`` digests as it did before addresses existed, so keys
    taken before an upgrade keep answering the same."""
    canonical: object = sorted((line.product_id, line.quantity) for line in cmd.lines)
    if cmd.address_id is not None:
        canonical = {"lines": canonical, "address_id": cmd.address_id}
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


class PlaceOrder:
    """Take stock for every line and record the order, in one transaction, or change nothing.

    With an Idempotency-Key, the answer is kept in that same transaction (the order's view, as
    plain data): a retry with the same key and body gets it again and takes no more stock;
    another body is refused."""

    def __init__(self, uow: UnitOfWork, clock: Clock, currency: str) -> None:
        self._uow = uow
        self._clock = clock
        self._currency = currency

    @retried_if_nothing_kept
    def __call__(self, cmd: PlaceOrderCommand) -> PlacedOrder:
        check_line_requests(cmd.lines)  # fail fast, before any lock is taken
        with self._uow.write() as uow:
            now = self._clock.now()
            if cmd.idempotency_key is not None:
                replay = self._claim_or_replay(uow, cmd)
                if replay is not None:
                    return replay
            address = uow.addresses.for_order(cmd.customer_id, cmd.address_id)
            if address is None and cmd.address_id is not None:
                raise UnknownAddress(cmd.address_id)
            products = uow.products.get_for_update({line.product_id for line in cmd.lines})
            order = Order.place(
                customer_id=cmd.customer_id,
                requests=cmd.lines,
                products=products,
                created_at=now,
                currency=self._currency,
                delivery_address=address.delivery() if address is not None else None,
            )
            uow.orders.add(order)
            assert order.id is not None
            view = view_of_order(order)
            if cmd.idempotency_key is not None:
                uow.idempotency.save(
                    IdempotencyRecord(
                        customer_id=cmd.customer_id,
                        key=cmd.idempotency_key,
                        fingerprint=request_fingerprint(cmd),
                        created_at=now,
                        order_id=order.id,
                        response=to_plain(view),
                    )
                )
            uow.commit()
        return PlacedOrder(order_id=order.id, order=view)

    def _claim_or_replay(self, uow: WriteUnitOfWork, cmd: PlaceOrderCommand) -> PlacedOrder | None:
        assert cmd.idempotency_key is not None
        if uow.idempotency.claim(cmd.customer_id, cmd.idempotency_key, self._clock.now()):
            return None
        record = uow.idempotency.get(cmd.customer_id, cmd.idempotency_key)
        if record is None:
            # Claimed by a transaction that is still running (storage that does not wait).
            raise RequestInProgress()
        if record.fingerprint != request_fingerprint(cmd):
            raise IdempotencyKeyReused()
        # Kept as the order's view; answers kept in their wire format by releases before 1.2
        # have the same names, so they read back the same.
        kept = from_plain(OrderView, record.response)
        return PlacedOrder(order_id=record.order_id, order=kept, replayed=True)


class Reorder:
    """Order again what one of one's orders held (same products and quantities, today's prices
    and rules): a new order placed by ``PlaceOrder`` itself, Idempotency-Key included."""

    def __init__(self, uow: UnitOfWork, place_order: PlaceOrder) -> None:
        self._uow = uow
        self._place_order = place_order

    def __call__(
        self,
        customer_id: int,
        order_id: int,
        *,
        address_id: int | None = None,
        idempotency_key: str | None = None,
    ) -> PlacedOrder:
        with self._uow.read() as reads:
            # An order's lines never change, so reading them before placing is safe.
            previous = reads.order(order_id, customer_id=customer_id)
        if previous is None:
            raise OrderNotFound(order_id)
        return self._place_order(
            PlaceOrderCommand(
                customer_id=customer_id,
                lines=[
                    LineRequest(product_id=line.product_id, quantity=line.quantity)
                    for line in previous.lines
                ],
                idempotency_key=idempotency_key,
                address_id=address_id,
            )
        )


class ListMyOrders:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(
        self, customer_id: int, status: OrderStatus | None, page: PageRequest
    ) -> Page[OrderView]:
        with self._uow.read() as reads:
            return reads.order_page(OrderFilter(customer_id=customer_id, status=status), page)


class GetMyOrder:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, order_id: int) -> OrderView:
        with self._uow.read() as reads:
            view = reads.order(order_id, customer_id=customer_id)
        if view is None:
            raise OrderNotFound(order_id)
        return view


class CancelMyOrder:
    """Cancel one's own order while it is placed, and put its units back, atomically."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, customer_id: int, order_id: int) -> OrderView:
        with self._uow.write() as uow:
            order = uow.orders.get_for_update(order_id, customer_id=customer_id)
            if order is None:
                raise OrderNotFound(order_id)
            order.cancel(uow.products.get_for_update(order.product_ids()), self._clock.now())
            uow.commit()
        return view_of_order(order)


class ListAllOrders:
    """Every customer's orders for staff, newest first, optionally one customer's or one status."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(
        self, customer_username: str | None, status: OrderStatus | None, page: PageRequest
    ) -> Page[OrderView]:
        flt = OrderFilter(customer_username=customer_username or None, status=status)
        with self._uow.read() as reads:
            return reads.order_page(flt, page)


class GetOrderAsStaff:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, order_id: int) -> OrderView:
        with self._uow.read() as reads:
            view = reads.order(order_id)
        if view is None:
            raise OrderNotFound(order_id)
        return view


class OrderAction(enum.StrEnum):
    """What staff may do to an order (the domain decides from which status)."""

    SHIP = "ship"
    DELIVER = "deliver"
    CANCEL = "cancel"


class MoveOrder:
    """Staff move any customer's order on: ship it, deliver it, or cancel it (a phone call; the
    units go back to stock). The order's row is locked, so a customer's cancel racing a staff
    ship ends with exactly one of them done and the other refused by ``Order``'s rules."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, order_id: int, action: OrderAction) -> OrderView:
        with self._uow.write() as uow:
            order = uow.orders.get_for_update(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            now = self._clock.now()
            if action is OrderAction.CANCEL:
                order.cancel(uow.products.get_for_update(order.product_ids()), now)
            elif action is OrderAction.SHIP:
                # The counter's row stays locked until the commit: shippers take turns, and a
                # rollback gives the number back, so invoice numbers have no gaps.
                number = uow.invoice_numbers.next(now.year)
                order.ship(now, invoice_number=invoice_number(now.year, number))
            else:
                order.deliver(now)
            customer = uow.users.get(order.customer_id)
            uow.commit()
        assert customer is not None
        assert customer.id is not None
        return view_of_order(order, CustomerView(id=customer.id, username=customer.username))


def _issued(view: OrderView | None, order_id: int, renderer: InvoiceRenderer) -> Invoice:
    if view is None:
        raise OrderNotFound(order_id)
    if view.invoice_number is None:
        raise InvoiceNotIssued(order_id)
    return Invoice(
        number=view.invoice_number,
        content=renderer.render(view),
        media_type=renderer.media_type,
    )


class GetMyInvoice:
    """The invoice of one's own shipped order."""

    def __init__(self, uow: UnitOfWork, renderer: InvoiceRenderer) -> None:
        self._uow = uow
        self._renderer = renderer

    def __call__(self, customer_id: int, order_id: int) -> Invoice:
        with self._uow.read() as reads:
            view = reads.order(order_id, customer_id=customer_id)
        return _issued(view, order_id, self._renderer)


class GetInvoiceAsStaff:
    """Any shipped order's invoice."""

    def __init__(self, uow: UnitOfWork, renderer: InvoiceRenderer) -> None:
        self._uow = uow
        self._renderer = renderer

    def __call__(self, order_id: int) -> Invoice:
        with self._uow.read() as reads:
            view = reads.order(order_id)
        return _issued(view, order_id, self._renderer)
