"""Plain data that crosses the application boundary: commands in, views out.

Views are ``NamedTuple``s: immutable, read by attribute, and built in one step from a row whose
columns were selected from the view's own ``_fields`` (see the SQL reads), or by keyword from an
entity. Adding a field to a view is adding it here; the reads follow its ``_fields``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from opply.domain.model import (
    DEFAULT_UNIT,
    ZERO,
    Amounts,
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

    def given(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True, kw_only=True)
class PlaceOrderCommand:
    customer_id: int
    lines: Sequence[LineRequest]
    idempotency_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlacedOrder:
    """A placed order, as the client receives it (``body``: its wire format, kept with an
    Idempotency-Key so that a retry gets this very answer)."""

    order_id: int
    body: dict[str, Any]
    replayed: bool = False


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
