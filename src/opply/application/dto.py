"""Plain data that crosses the application boundary: commands in, views out.

Views are ``NamedTuple``s: immutable, read by attribute, and built in one step from a row whose
columns were selected from the view's own ``_fields`` (see the SQL reads), or by keyword from an
entity. Adding a field to a view is adding it here; the reads follow its ``_fields``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from opply.domain.model import (
    DEFAULT_UNIT,
    ZERO,
    Amounts,
    DeliveryAddress,
    LineRequest,
    Order,
    OrderStatus,
    line_amounts,
    order_amounts,
)

T = TypeVar("T")


# --- reads ------------------------------------------------------------------------------------


class ProductView(NamedTuple):
    id: int
    sku: str
    name: str
    description: str
    unit: str
    price: Decimal
    vat_rate: Decimal
    quantity_in_stock: int
    min_order_quantity: int
    case_size: int


class OrderLineView(NamedTuple):
    product_id: int
    sku: str
    product_name: str
    unit: str
    unit_price: Decimal
    vat_rate: Decimal
    quantity: int
    line_net: Decimal
    line_vat: Decimal
    line_total: Decimal


class CustomerView(NamedTuple):
    id: int
    username: str


class OrderView(NamedTuple):
    id: int
    status: OrderStatus
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    currency: str
    lines: tuple[OrderLineView, ...]
    subtotal: Decimal
    vat_total: Decimal
    total: Decimal
    delivery_address: DeliveryAddress | None
    invoice_number: str | None
    # Who placed it: always filled by reads; None in the answer to the customer's own write.
    customer: CustomerView | None = None


def order_line_view(
    *,
    product_id: int,
    sku: str,
    product_name: str,
    unit: str,
    unit_price: Decimal,
    vat_rate: Decimal,
    quantity: int,
) -> OrderLineView:
    """A line as it was bought, with its amounts by the domain's rule."""
    amounts = line_amounts(unit_price, quantity, vat_rate)
    return OrderLineView(
        product_id=product_id,
        sku=sku,
        product_name=product_name,
        unit=unit,
        unit_price=unit_price,
        vat_rate=vat_rate,
        quantity=quantity,
        line_net=amounts.net,
        line_vat=amounts.vat,
        line_total=amounts.total,
    )


# The columns of an order line that a line's view copies as they are.
LINE_FIELDS = ("product_id", "sku", "product_name", "unit", "unit_price", "vat_rate", "quantity")


def view_of_order(order: Order, customer: CustomerView | None = None) -> OrderView:
    """The view of an order entity: the same fields and totals a read of its rows gives."""
    assert order.id is not None, "the repository assigns the id on add"
    return order_view(
        id=order.id,
        status=order.status,
        created_at=order.created_at,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        cancelled_at=order.cancelled_at,
        currency=order.currency,
        lines=[
            order_line_view(**{name: getattr(line, name) for name in LINE_FIELDS})
            for line in order.lines
        ],
        delivery_address=order.delivery_address,
        invoice_number=order.invoice_number,
        customer=customer,
    )


def order_view(
    *,
    id: int,
    status: OrderStatus,
    created_at: datetime,
    shipped_at: datetime | None,
    delivered_at: datetime | None,
    cancelled_at: datetime | None,
    currency: str,
    lines: Sequence[OrderLineView],
    delivery_address: DeliveryAddress | None,
    invoice_number: str | None,
    customer: CustomerView | None,
) -> OrderView:
    """An order's view from its parts: lines by product id, totals by the domain's rule."""
    ordered = tuple(sorted(lines, key=lambda line: line.product_id))
    amounts = order_amounts(Amounts(net=line.line_net, vat=line.line_vat) for line in ordered)
    return OrderView(
        id=id,
        status=status,
        created_at=created_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        cancelled_at=cancelled_at,
        currency=currency,
        lines=ordered,
        subtotal=amounts.net,
        vat_total=amounts.vat,
        total=amounts.total,
        delivery_address=delivery_address,
        invoice_number=invoice_number,
        customer=customer,
    )


class FeedPosition(NamedTuple):
    """Where a reader of the event feed stands: after the event at (``tx``, ``id``).

    Events are read in (``tx``, ``id``) order, ``tx`` being the writing transaction's id on
    PostgreSQL (0 on SQLite, whose writers take turns, so ids alone follow commit order); see
    docs/architecture.md, "Order events"."""

    tx: int
    id: int


FEED_START = FeedPosition(tx=0, id=0)


class EventData(NamedTuple):
    order: OrderView


class OrderEventView(NamedTuple):
    """An order event as kept: what happened, when, and the order as it then stood."""

    id: int
    type: str
    occurred_at: datetime
    order: OrderView
    position: FeedPosition

    @property
    def data(self) -> EventData:
        """What the event is about (the order), as every event's envelope carries it."""
        return EventData(order=self.order)


@dataclass(frozen=True, kw_only=True)
class EventFeed:
    """Events after a cursor, oldest first, and the cursor to send back next time."""

    items: Sequence[OrderEventView]
    next_after: str


@dataclass(frozen=True, kw_only=True)
class RecordedEvent:
    """An event an order recorded, as the unit of work writes it down on commit."""

    type: str
    occurred_at: datetime
    order_id: int
    customer_id: int
    order: OrderView


class AddressView(NamedTuple):
    id: int
    label: str
    recipient: str
    company: str
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str
    phone: str
    is_default: bool


class UserView(NamedTuple):
    id: int
    username: str
    is_staff: bool
    is_active: bool


class UserAccess(NamedTuple):
    """What every authenticated request checks about its caller, and nothing more."""

    username: str
    is_active: bool
    is_staff: bool
    token_version: int
    # The login (refresh token family) the access token came from has been revoked.
    login_revoked: bool


class Credentials(NamedTuple):
    """What a login checks: the account's password hash and whether it may log in."""

    id: int
    password_hash: str
    is_active: bool
    is_staff: bool


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list and the size of the whole list."""

    items: Sequence[T]
    total: int


@dataclass(frozen=True, kw_only=True)
class PageRequest:
    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


class ProductSort(enum.StrEnum):
    """Orders of the product list; ties always broken by id. A leading '-' means descending."""

    ID = "id"
    NAME = "name"
    NAME_DESC = "-name"
    PRICE = "price"
    PRICE_DESC = "-price"
    STOCK = "stock"
    STOCK_DESC = "-stock"


@dataclass(frozen=True, kw_only=True)
class ProductFilter:
    search: str | None = None  # name contains, case-insensitive
    in_stock: bool = False
    sort: ProductSort = ProductSort.ID


@dataclass(frozen=True, kw_only=True)
class OrderFilter:
    """Orders newest first (ties by id, newest first); every given condition must hold."""

    customer_id: int | None = None
    customer_username: str | None = None
    status: OrderStatus | None = None


@dataclass(frozen=True, kw_only=True)
class UserFilter:
    search: str | None = None  # username contains, case-insensitive


# --- commands and results ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NewProduct:
    name: str
    price: Decimal
    quantity_in_stock: int = 0
    sku: str | None = None  # None: the product gets P- and its id (P-000007)
    unit: str = DEFAULT_UNIT
    description: str = ""
    vat_rate: Decimal = ZERO
    min_order_quantity: int = 1
    case_size: int = 1


@dataclass(frozen=True, kw_only=True)
class ProductChanges:
    """A staff edit: only the fields given (not None) change."""

    name: str | None = None
    price: Decimal | None = None
    quantity_in_stock: int | None = None
    sku: str | None = None
    unit: str | None = None
    description: str | None = None
    vat_rate: Decimal | None = None
    min_order_quantity: int | None = None
    case_size: int | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True, kw_only=True)
class PlaceOrderCommand:
    customer_id: int
    lines: Sequence[LineRequest]
    idempotency_key: str | None = None
    # None: the customer's default address (or none, if the book is empty).
    address_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class PlacedOrder:
    """A placed order as it was when placed (kept with an Idempotency-Key, so that a retry gets
    this very answer; ``replayed`` says it is one)."""

    order_id: int
    order: OrderView
    replayed: bool = False


@dataclass(frozen=True, kw_only=True)
class NewAddress:
    recipient: str
    line1: str
    postal_code: str
    city: str
    country: str
    label: str = ""
    company: str = ""
    line2: str = ""
    phone: str = ""
    is_default: bool = False


@dataclass(frozen=True, kw_only=True)
class Invoice:
    """An issued invoice as a document: its number, and the file."""

    number: str
    content: bytes
    media_type: str


@dataclass(frozen=True, kw_only=True)
class NewUser:
    username: str
    password: str
    is_staff: bool = False


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    access: str
    refresh: str


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling, as established from a valid access token of an active user."""

    user_id: int
    username: str
    is_staff: bool


# --- the admin's dashboard and the orders export ------------------------------------------------


class OrderToShip(NamedTuple):
    """A placed order waiting to be shipped, as the dashboard lists it."""

    id: int
    created_at: datetime
    customer: str  # the username
    delivery_city: str | None  # None: the order goes nowhere (placed without an address)
    currency: str
    subtotal: Decimal
    vat_total: Decimal
    total: Decimal


@dataclass(frozen=True, kw_only=True)
class OrdersToShip:
    """The oldest placed orders (at most the limit asked for) and how many are placed in all."""

    orders: Sequence[OrderToShip]
    waiting: int


class Sales(NamedTuple):
    """What one stretch of time sold: orders not cancelled, their net, VAT and total."""

    orders: int
    net: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.vat


NO_SALES = Sales(orders=0, net=ZERO, vat=ZERO)


class DaySales(NamedTuple):
    day: date
    orders: int
    net: Decimal
    vat: Decimal
    total: Decimal


class EndpointTrouble(NamedTuple):
    """A webhook endpoint the dashboard's "Integrations" panel shows: disabled, or with
    deliveries that failed (every attempt used up)."""

    id: int
    url: str
    description: str
    is_active: bool
    failing_since: datetime | None
    failed: int  # its deliveries whose status is failed


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    """The admin's home page: what to ship, what runs low, and the last days' sales."""

    to_ship: OrdersToShip
    running_low: Page[ProductView]
    low_stock_threshold: int
    sales: Sequence[DaySales]  # one per day, oldest first, zeros included
    integrations: Page[EndpointTrouble]  # webhook endpoints disabled or with failed deliveries
    time_zone: str
    as_of: datetime  # when it was read (the orders' ages count from here)


@dataclass(frozen=True, kw_only=True)
class ExportFilter:
    """Orders placed in ``[start, end)`` (UTC instants), of ``status`` if given."""

    start: datetime
    end: datetime
    status: OrderStatus | None = None


class ExportLine(NamedTuple):
    """One row of the orders export: an order line with its order's facts and its amounts."""

    order_id: int
    created_at: datetime
    status: OrderStatus
    customer: str
    invoice_number: str | None
    sku: str
    product_name: str
    quantity: int
    unit_price: Decimal
    vat_rate: Decimal
    line_net: Decimal
    line_vat: Decimal
    line_total: Decimal
    currency: str


def export_line(
    *,
    order_id: int,
    created_at: datetime,
    status: OrderStatus,
    customer: str,
    invoice_number: str | None,
    sku: str,
    product_name: str,
    quantity: int,
    unit_price: Decimal,
    vat_rate: Decimal,
    currency: str,
) -> ExportLine:
    """An export row with its amounts by the domain's rule, as the order's own view has them."""
    amounts = line_amounts(unit_price, quantity, vat_rate)
    return ExportLine(
        order_id=order_id,
        created_at=created_at,
        status=status,
        customer=customer,
        invoice_number=invoice_number,
        sku=sku,
        product_name=product_name,
        quantity=quantity,
        unit_price=unit_price,
        vat_rate=vat_rate,
        line_net=amounts.net,
        line_vat=amounts.vat,
        line_total=amounts.total,
        currency=currency,
    )


# --- webhooks ---------------------------------------------------------------------------------


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpointView(NamedTuple):
    id: int
    url: str
    event_types: tuple[str, ...]
    description: str
    secret: str
    is_active: bool
    created_at: datetime


class WebhookDeliveryView(NamedTuple):
    id: int
    endpoint_id: int
    event_id: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime


class WebhookAttemptView(NamedTuple):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class NewWebhookEndpoint:
    url: str
    event_types: tuple[str, ...]
    description: str
    secret: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ClaimedDelivery:
    """A delivery a worker holds the lease of, with what it needs to make the attempt.

    ``attempt`` is its attempts so far, this one included: it fences the result (a worker whose
    lease ran out and was taken over cannot record over the newer attempt)."""

    delivery_id: int
    attempt: int
    endpoint_id: int
    url: str
    secret: str
    event: OrderEventView
    endpoint_failing: bool = False  # its endpoint had failed since its last success


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What a worker records after an attempt: the delivery's new state and the endpoint's."""

    delivery_id: int
    attempt: int
    at: datetime
    status: DeliveryStatus
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None
    duration_ms: int
    disable_endpoint: bool  # 410 Gone
    failing_cutoff: datetime  # an endpoint failing since before this is disabled
    endpoint_failing: bool = True  # as claimed; a success resets it (False: nothing to reset)


@dataclass(frozen=True, kw_only=True)
class DeliveryStats:
    pending: int
    delivered: int
    failed: int
    oldest_pending_created_at: datetime | None
