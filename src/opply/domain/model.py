"""Entities and value objects of the ordering domain.

``Product`` owns its stock: only ``take``, ``restock`` and ``update`` change
``quantity_in_stock``, and none lets it go below zero. ``Order`` holds frozen ``OrderLine``
values whose name and unit price are copied when the order is placed, so later catalogue changes
never rewrite order history. Money is ``Decimal`` with two places; the arithmetic lives here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

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


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    """What one line of an order costs: its unit price times its quantity."""
    return money(unit_price * quantity)


def order_total(line_totals: Iterable[Decimal]) -> Decimal:
    return money(sum(line_totals, Decimal(0)))


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
    if not isinstance(name, str):
        raise InvalidName(f"Name must be text, got {name!r}")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidName("Name must not be blank")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"Name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def validate_stock(quantity: int) -> int:
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 0 <= quantity <= MAX_STOCK
    ):
        raise InvalidQuantity(
            f"Stock must be a whole number from 0 to {MAX_STOCK}, got {quantity!r}"
        )
    return quantity


def _positive_quantity(quantity: int, what: str) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidQuantity(f"{what} must be a whole number of at least 1, got {quantity!r}")
    return quantity


@dataclass(eq=False, kw_only=True)
class Product:
    name: str
    price: Decimal
    quantity_in_stock: int = 0
    id: int | None = None

    # What staff may change with ``update``, and the rule each new value must pass.
    EDITABLE: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "name": validate_name,
        "price": validate_price,
        "quantity_in_stock": validate_stock,
    }

    def __post_init__(self) -> None:
        for name, check in self.EDITABLE.items():
            setattr(self, name, check(getattr(self, name)))

    def update(self, **changes: Any) -> None:
        """Staff edits: every value checked before any is applied (all or nothing).

        A new ``quantity_in_stock`` is a correction after a physical count, not a sale."""
        unknown = changes.keys() - self.EDITABLE.keys()
        if unknown:
            raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
        checked = {name: self.EDITABLE[name](value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def can_take(self, quantity: int) -> bool:
        return 0 < quantity <= self.quantity_in_stock

    def take(self, quantity: int) -> None:
        """Remove ``quantity`` units from stock, refusing to go below zero."""
        _positive_quantity(quantity, "Quantity")
        if quantity > self.quantity_in_stock:
            shortage = Shortage(
                product_id=self.id or 0, requested=quantity, available=self.quantity_in_stock
            )
            raise OutOfStock([shortage])
        self.quantity_in_stock -= quantity

    def restock(self, quantity: int) -> None:
        """Add ``quantity`` units to stock: a delivery, or the units of a cancelled order."""
        _positive_quantity(quantity, "Restock quantity")
        if self.quantity_in_stock + quantity > MAX_STOCK:
            raise InvalidQuantity(f"Stock of product {self.id} would exceed {MAX_STOCK}")
        self.quantity_in_stock += quantity


@dataclass(frozen=True, kw_only=True)
class OrderLine:
    """What was bought, at the name and price of the moment it was bought."""

    product_id: int
    product_name: str
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return line_total(self.unit_price, self.quantity)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
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


@dataclass(eq=False, kw_only=True)
class Order:
    customer_id: int
    created_at: datetime
    currency: str
    lines: list[OrderLine] = field(default_factory=list)
    status: OrderStatus = OrderStatus.PLACED
    id: int | None = None

    @property
    def total(self) -> Decimal:
        return order_total(line.line_total for line in self.lines)

    @classmethod
    def place(
        cls,
        *,
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
            Shortage(
                product_id=r.product_id,
                requested=r.quantity,
                available=products[r.product_id].quantity_in_stock,
            )
            for r in requests
            if not products[r.product_id].can_take(r.quantity)
        ]
        if shortages:
            raise OutOfStock(shortages)
        lines = []
        for req in requests:
            product = products[req.product_id]
            product.take(req.quantity)
            lines.append(
                OrderLine(
                    product_id=req.product_id,
                    product_name=product.name,
                    unit_price=product.price,
                    quantity=req.quantity,
                )
            )
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

    def product_ids(self) -> set[int]:
        return {line.product_id for line in self.lines}


@dataclass(eq=False, kw_only=True)
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


@dataclass(eq=False, kw_only=True)
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


@dataclass(eq=False, kw_only=True)
class IdempotencyRecord:
    """The first successful answer to a keyed request, kept so a retry gets the same answer."""

    customer_id: int
    key: str
    fingerprint: str
    created_at: datetime
    order_id: int
    response: dict[str, Any]
