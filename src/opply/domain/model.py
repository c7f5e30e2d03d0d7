"""Entities and value objects of the ordering domain.

``Product`` owns its stock: only ``take`` and ``restock`` change ``quantity_in_stock`` and neither
lets it go below zero. ``Order`` holds frozen ``OrderLine`` values whose name and unit price are
copied when the order is placed, so later catalogue changes never rewrite order history.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from opply.domain.errors import (
    DuplicateProductLine,
    EmptyOrder,
    InvalidName,
    InvalidPrice,
    InvalidQuantity,
    OrderNotCancellable,
    OutOfStock,
    Shortage,
    UnknownProducts,
)

CENT = Decimal("0.01")
MAX_PRICE = Decimal("9999999999.99")  # fits NUMERIC(12, 2)
MAX_NAME_LENGTH = 200
MAX_STOCK = 2_000_000_000  # fits a 32-bit signed integer column
MAX_LINE_QUANTITY = 10_000
MAX_ORDER_LINES = 100


def money(value: Decimal | int | str) -> Decimal:
    """A price or total as an exact Decimal with two places."""
    return Decimal(value).quantize(CENT)


def validate_price(price: Decimal) -> Decimal:
    if not isinstance(price, Decimal) or not price.is_finite():
        raise InvalidPrice(f"Price must be a finite decimal, got {price!r}")
    if price < 0:
        raise InvalidPrice(f"Price must not be negative, got {price}")
    # Checked before quantize, which raises decimal.InvalidOperation on huge values.
    if price > MAX_PRICE:
        raise InvalidPrice(f"Price must be at most {MAX_PRICE}, got {price}")
    if price != price.quantize(CENT):
        raise InvalidPrice(f"Price must have at most two decimal places, got {price}")
    return money(price)


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidName("Name must not be blank")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"Name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def _positive_quantity(quantity: int, what: str) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidQuantity(f"{what} must be a whole number of at least 1, got {quantity!r}")
    return quantity


@dataclass(eq=False)
class Product:
    name: str
    price: Decimal
    quantity_in_stock: int = 0
    id: int | None = None

    def __post_init__(self) -> None:
        self.name = validate_name(self.name)
        self.price = validate_price(self.price)
        if (
            isinstance(self.quantity_in_stock, bool)
            or not isinstance(self.quantity_in_stock, int)
            or not 0 <= self.quantity_in_stock <= MAX_STOCK
        ):
            raise InvalidQuantity(
                f"Stock must be a whole number from 0 to {MAX_STOCK}, "
                f"got {self.quantity_in_stock!r}"
            )

    def can_take(self, quantity: int) -> bool:
        return 0 < quantity <= self.quantity_in_stock

    def take(self, quantity: int) -> None:
        """Remove ``quantity`` units from stock, refusing to go below zero."""
        _positive_quantity(quantity, "Quantity")
        if quantity > self.quantity_in_stock:
            raise OutOfStock([Shortage(self._id(), quantity, self.quantity_in_stock)])
        self.quantity_in_stock -= quantity

    def restock(self, quantity: int) -> None:
        """Add ``quantity`` units to stock: a delivery, or the units of a cancelled order."""
        _positive_quantity(quantity, "Restock quantity")
        if self.quantity_in_stock + quantity > MAX_STOCK:
            raise InvalidQuantity(f"Stock of product {self.id} would exceed {MAX_STOCK}")
        self.quantity_in_stock += quantity

    def set_stock(self, quantity: int) -> None:
        """Staff correction of the stock count after a physical inventory."""
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not (0 <= quantity <= MAX_STOCK)
        ):
            raise InvalidQuantity(f"Stock must be a whole number from 0 to {MAX_STOCK}")
        self.quantity_in_stock = quantity

    def rename(self, name: str) -> None:
        self.name = validate_name(name)

    def reprice(self, price: Decimal) -> None:
        self.price = validate_price(price)

    def _id(self) -> int:
        return self.id if self.id is not None else 0


@dataclass(frozen=True)
class OrderLine:
    """What was bought, at the name and price of the moment it was bought."""

    product_id: int
    product_name: str
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return money(self.unit_price * self.quantity)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LineRequest:
    """A customer's wish: this many of that product."""

    product_id: int
    quantity: int


def check_line_requests(requests: Sequence[LineRequest]) -> None:
    """Shape rules of an order, checked before any stock is touched."""
    if not requests:
        raise EmptyOrder()
    if len(requests) > MAX_ORDER_LINES:
        raise InvalidQuantity(f"An order may have at most {MAX_ORDER_LINES} lines")
    seen: set[int] = set()
    repeated: set[int] = set()
    for req in requests:
        _positive_quantity(req.quantity, f"Quantity of product {req.product_id}")
        if req.quantity > MAX_LINE_QUANTITY:
            raise InvalidQuantity(
                f"Quantity of product {req.product_id} must be at most {MAX_LINE_QUANTITY}"
            )
        if req.product_id in seen:
            repeated.add(req.product_id)
        seen.add(req.product_id)
    if repeated:
        raise DuplicateProductLine(repeated)


@dataclass(eq=False)
class Order:
    customer_id: int
    created_at: datetime
    currency: str
    lines: list[OrderLine] = field(default_factory=list)
    status: OrderStatus = OrderStatus.PLACED
    id: int | None = None

    @property
    def total(self) -> Decimal:
        return money(sum((line.line_total for line in self.lines), Decimal(0)))

    @classmethod
    def place(
        cls,
        customer_id: int,
        requests: Sequence[LineRequest],
        products: Mapping[int, Product],
        created_at: datetime,
        currency: str,
    ) -> Order:
        """Take stock for every line or for none: all shortages are reported together.

        ``products`` must hold every requested product (locked by the caller where the storage
        needs it); a missing one is an ``UnknownProducts`` error.
        """
        check_line_requests(requests)
        missing = [r.product_id for r in requests if r.product_id not in products]
        if missing:
            raise UnknownProducts(missing)
        shortages = [
            Shortage(r.product_id, r.quantity, products[r.product_id].quantity_in_stock)
            for r in requests
            if not products[r.product_id].can_take(r.quantity)
        ]
        if shortages:
            raise OutOfStock(shortages)
        lines = []
        for req in requests:
            product = products[req.product_id]
            product.take(req.quantity)
            lines.append(OrderLine(req.product_id, product.name, product.price, req.quantity))
        return cls(customer_id=customer_id, created_at=created_at, currency=currency, lines=lines)

    def cancel(self, products: Mapping[int, Product]) -> None:
        """Cancel a placed order and put every line's units back on the shelf."""
        if self.status is not OrderStatus.PLACED:
            raise OrderNotCancellable(self.id or 0, self.status.value)
        for line in self.lines:
            product = products.get(line.product_id)
            if product is not None:
                product.restock(line.quantity)
        self.status = OrderStatus.CANCELLED

    def product_ids(self) -> Iterable[int]:
        return (line.product_id for line in self.lines)


@dataclass(eq=False)
class User:
    username: str
    password_hash: str
    is_staff: bool = False
    is_active: bool = True
    id: int | None = None

    def deactivate(self) -> None:
        self.is_active = False

    def activate(self) -> None:
        self.is_active = True


@dataclass(eq=False)
class RefreshToken:
    """Server-side record of one issued refresh token (by its ``jti``, never the token itself).

    Tokens of one login form a family; each is single-use. Presenting a used one means it was
    copied, so the whole family is revoked and both the thief and the owner must log in again.
    """

    jti: str
    family_id: str
    user_id: int
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_spent(self) -> bool:
        return self.used_at is not None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def use(self, at: datetime) -> None:
        self.used_at = at


@dataclass(eq=False)
class IdempotencyRecord:
    """The first successful answer to a keyed request, kept so a retry gets the same answer."""

    customer_id: int
    key: str
    fingerprint: str
    created_at: datetime
    order_id: int
    response: dict[str, object]
