"""Entities and value objects of the ordering domain.

``Product`` owns its stock: only ``take``, ``restock`` and ``update`` change
``quantity_in_stock``, and none lets it go below zero. ``Order`` holds frozen ``OrderLine``
values whose name and unit price are copied when the order is placed, so later catalogue changes
never rewrite order history. Money is ``Decimal`` with two places; the arithmetic lives here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import pycountry

from opply.domain.errors import (
    AddressBookFull,
    BelowMinimumQuantity,
    DefaultAddressRequired,
    DuplicateProductLine,
    EmptyOrder,
    InvalidAddress,
    InvalidCountry,
    InvalidName,
    InvalidPrice,
    InvalidProductField,
    InvalidQuantity,
    InvalidSku,
    InvalidStatusTransition,
    NotACaseMultiple,
    OrderNotCancellable,
    OutOfStock,
    RuleBreach,
    Shortage,
    UnknownProducts,
)

CENT = Decimal("0.01")
MAX_PRICE = Decimal("9999999999.99")  # fits NUMERIC(12, 2)
MAX_NAME_LENGTH = 200
MAX_STOCK = 2_000_000_000  # fits a 32-bit signed integer column
MAX_LINE_QUANTITY = 10_000
MAX_ORDER_LINES = 100
MAX_SKU_LENGTH = 64
SKU_RE = re.compile(rf"^[A-Za-z0-9._-]{{1,{MAX_SKU_LENGTH}}}$")
# The form of the SKU a product gets when created without one: reserved for those.
GENERATED_SKU_RE = re.compile(r"^P-[0-9]+$", re.IGNORECASE)
MAX_UNIT_LENGTH = 32
DEFAULT_UNIT = "unit"
MAX_DESCRIPTION_LENGTH = 2000
MAX_VAT_RATE = Decimal("100.00")
MAX_ORDERING_RULE = 10_000  # a minimum order quantity or a case size
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    """A price or total as an exact Decimal with two places."""
    return Decimal(value).quantize(CENT)


@dataclass(frozen=True, kw_only=True)
class Amounts:
    """Net (before VAT), VAT, and their sum: what a line or a whole order costs."""

    net: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.vat

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(net=self.net + other.net, vat=self.vat + other.vat)


NO_AMOUNTS = Amounts(net=ZERO, vat=ZERO)


def line_amounts(unit_price: Decimal, quantity: int, vat_rate: Decimal) -> Amounts:
    """One line: net = unit price x quantity; VAT = net x rate / 100, rounded to the cent, half
    up (2.625 -> 2.63). Each line is rounded on its own; an order adds up its lines' cents, so
    its total is exactly the sum of what its lines show."""
    net = money(unit_price * quantity)
    vat = (net * vat_rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return Amounts(net=net, vat=vat)


def order_amounts(lines: Iterable[Amounts]) -> Amounts:
    """An order's subtotal (net), VAT total and total: the sums of its lines'."""
    return sum(lines, NO_AMOUNTS)


def default_sku(product_id: int) -> str:
    """The SKU of a product created without one (and of every product from before SKUs)."""
    return f"P-{product_id:06d}"


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


def validate_sku(sku: str, product_id: int | None) -> str:
    if not isinstance(sku, str) or not SKU_RE.fullmatch(sku):
        raise InvalidSku(
            f"SKU must be 1 to {MAX_SKU_LENGTH} letters, digits or . _ - characters, got {sku!r}"
        )
    own = default_sku(product_id) if product_id is not None else None
    if GENERATED_SKU_RE.fullmatch(sku) and sku.upper() != own:
        raise InvalidSku(
            f"SKUs of the form P-<digits> are given to products created without one; {sku!r} "
            "is not this product's"
        )
    return sku


def validate_unit(unit: str) -> str:
    if not isinstance(unit, str) or not unit.strip() or len(unit.strip()) > MAX_UNIT_LENGTH:
        raise InvalidProductField(f"Unit must be 1 to {MAX_UNIT_LENGTH} characters, got {unit!r}")
    return unit.strip()


def validate_description(description: str) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidProductField(
            f"Description must be text of at most {MAX_DESCRIPTION_LENGTH} characters"
        )
    return description.strip()


def validate_vat_rate(rate: Decimal) -> Decimal:
    if not isinstance(rate, Decimal) or not rate.is_finite() or not ZERO <= rate <= MAX_VAT_RATE:
        raise InvalidProductField(f"VAT rate must be a percentage from 0 to 100, got {rate!r}")
    if rate != rate.quantize(CENT):
        raise InvalidProductField(f"VAT rate must have at most two decimal places, got {rate}")
    return rate.quantize(CENT)


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


def _ordering_rule(what: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_ORDERING_RULE
        ):
            raise InvalidProductField(
                f"{what} must be a whole number from 1 to {MAX_ORDERING_RULE}, got {value!r}"
            )
        return value

    return check


validate_min_order_quantity = _ordering_rule("Minimum order quantity")
validate_case_size = _ordering_rule("Case size")


def check_ordering_rules(min_order_quantity: int, case_size: int) -> None:
    if min_order_quantity % case_size:
        raise InvalidProductField(
            f"Minimum order quantity ({min_order_quantity}) must be a multiple of the case "
            f"size ({case_size})"
        )


def _positive_quantity(quantity: int, what: str) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidQuantity(f"{what} must be a whole number of at least 1, got {quantity!r}")
    return quantity


@dataclass(eq=False, kw_only=True)
class Product:
    name: str
    price: Decimal
    quantity_in_stock: int = 0
    sku: str | None = None  # None until stored: the repository then gives ``default_sku(id)``
    unit: str = DEFAULT_UNIT
    description: str = ""
    vat_rate: Decimal = ZERO
    # A line must order at least ``min_order_quantity``, in whole cases of ``case_size``.
    min_order_quantity: int = 1
    case_size: int = 1
    id: int | None = None

    # What staff may change with ``update``, and the rule each new value must pass.
    EDITABLE: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "name": validate_name,
        "price": validate_price,
        "quantity_in_stock": validate_stock,
        "unit": validate_unit,
        "description": validate_description,
        "vat_rate": validate_vat_rate,
        "min_order_quantity": validate_min_order_quantity,
        "case_size": validate_case_size,
    }

    def __post_init__(self) -> None:
        for name, check in self.EDITABLE.items():
            setattr(self, name, check(getattr(self, name)))
        check_ordering_rules(self.min_order_quantity, self.case_size)
        if self.sku is not None:
            self.sku = validate_sku(self.sku, self.id)
        elif self.id is not None:
            self.sku = default_sku(self.id)

    def update(self, **changes: Any) -> None:
        """Staff edits: every value checked before any is applied (all or nothing).

        A new ``quantity_in_stock`` is a correction after a physical count, not a sale."""
        unknown = changes.keys() - self.EDITABLE.keys() - {"sku"}
        if unknown:
            raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
        checked: dict[str, Any] = {
            name: validate_sku(value, self.id) if name == "sku" else self.EDITABLE[name](value)
            for name, value in changes.items()
        }
        check_ordering_rules(
            checked.get("min_order_quantity", self.min_order_quantity),
            checked.get("case_size", self.case_size),
        )
        for name, value in checked.items():
            setattr(self, name, value)

    def breach(self, quantity: int) -> RuleBreach | None:
        """What ``quantity`` breaks of this product's minimum and case size, if anything."""
        if quantity >= self.min_order_quantity and quantity % self.case_size == 0:
            return None
        return RuleBreach(
            product_id=self.id or 0,
            quantity=quantity,
            min_order_quantity=self.min_order_quantity,
            case_size=self.case_size,
        )

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
    """What was bought: the product as it was described and priced when it was bought."""

    product_id: int
    sku: str
    product_name: str
    unit: str
    unit_price: Decimal
    vat_rate: Decimal
    quantity: int

    @property
    def amounts(self) -> Amounts:
        return line_amounts(self.unit_price, self.quantity, self.vat_rate)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# The order's life, the one place that knows it: from each status, where it may go.
MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True, kw_only=True)
class OrderEvent:
    """Something that happened to an order, recorded by the order itself when it happens.

    The unit of work writes what its orders recorded, with the order as it then stands, in the
    transaction that made the change: no change without its event, no event without its change.
    """

    type: ClassVar[str]
    occurred_at: datetime


class OrderPlaced(OrderEvent):
    type = "order.placed"


class OrderShipped(OrderEvent):
    type = "order.shipped"


class OrderDelivered(OrderEvent):
    type = "order.delivered"


class OrderCancelled(OrderEvent):
    type = "order.cancelled"


# The event each status is reached with: every status has one, so no move goes unrecorded.
EVENT_OF_STATUS: dict[OrderStatus, type[OrderEvent]] = {
    OrderStatus.PLACED: OrderPlaced,
    OrderStatus.SHIPPED: OrderShipped,
    OrderStatus.DELIVERED: OrderDelivered,
    OrderStatus.CANCELLED: OrderCancelled,
}


@dataclass(frozen=True, kw_only=True)
class LineRequest:
    """A customer's wish: this many of that product."""

    product_id: int
    quantity: int


def check_ordering_rules_of_lines(
    requests: Sequence[LineRequest], products: Mapping[int, Product]
) -> None:
    """Every line at least its product's minimum and in whole cases; every breach is listed.
    Breaking a minimum names the answer, as the one a buyer must fix first."""
    breaches = [
        breach
        for r in requests
        if (breach := products[r.product_id].breach(r.quantity)) is not None
    ]
    if any(b.quantity < b.min_order_quantity for b in breaches):
        raise BelowMinimumQuantity(breaches)
    if breaches:
        raise NotACaseMultiple(breaches)


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
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    # Where it goes, copied from the address book when placed (None: the book was empty).
    delivery_address: DeliveryAddress | None = None
    # Given when it ships (``invoice_number``), never changed after.
    invoice_number: str | None = None
    id: int | None = None
    # What happened to it in this unit of work and is not yet written down (never stored as is:
    # the unit of work takes them on commit).
    events: list[OrderEvent] = field(default_factory=list, compare=False, repr=False)

    @property
    def amounts(self) -> Amounts:
        return order_amounts(line.amounts for line in self.lines)

    @property
    def total(self) -> Decimal:
        return self.amounts.total

    @classmethod
    def place(
        cls,
        *,
        customer_id: int,
        requests: Sequence[LineRequest],
        products: Mapping[int, Product],
        created_at: datetime,
        currency: str,
        delivery_address: DeliveryAddress | None = None,
    ) -> Order:
        """Take stock for every line or for none: all shortages are reported together.

        ``products`` must hold every requested product (locked by the caller where the storage
        needs it); a missing one is an ``UnknownProducts`` error. Then every line must meet
        its product's minimum and case size, then the stock must suffice.
        """
        check_line_requests(requests)
        missing = [r.product_id for r in requests if r.product_id not in products]
        if missing:
            raise UnknownProducts(missing)
        check_ordering_rules_of_lines(requests, products)
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
            assert product.sku is not None, "a stored product has its SKU"
            lines.append(
                OrderLine(
                    product_id=req.product_id,
                    sku=product.sku,
                    product_name=product.name,
                    unit=product.unit,
                    unit_price=product.price,
                    vat_rate=product.vat_rate,
                    quantity=req.quantity,
                )
            )
        order = cls(
            customer_id=customer_id,
            created_at=created_at,
            currency=currency,
            lines=lines,
            delivery_address=delivery_address,
        )
        order.events.append(OrderPlaced(occurred_at=created_at))
        return order

    def _move(self, to: OrderStatus, at: datetime) -> None:
        if to not in MOVES[self.status]:
            if to is OrderStatus.CANCELLED:
                raise OrderNotCancellable(self.id or 0, self.status.value)
            raise InvalidStatusTransition(self.id or 0, self.status.value, to.value)
        self.status = to
        setattr(self, f"{to.value}_at", at)
        self.events.append(EVENT_OF_STATUS[to](occurred_at=at))

    def ship(self, at: datetime, *, invoice_number: str) -> None:
        """Placed -> shipped: the goods have left the warehouse, and the order is invoiced
        (``invoice_number``: the next of the shipping year, see ``invoice_number``)."""
        self._move(OrderStatus.SHIPPED, at)
        self.invoice_number = invoice_number

    def deliver(self, at: datetime) -> None:
        """Shipped -> delivered."""
        self._move(OrderStatus.DELIVERED, at)

    def cancel(self, products: Mapping[int, Product], at: datetime) -> None:
        """Placed -> cancelled, and every line's units back on the shelf."""
        self._move(OrderStatus.CANCELLED, at)
        for line in self.lines:
            product = products.get(line.product_id)
            if product is not None:
                product.restock(line.quantity)

    def product_ids(self) -> set[int]:
        return {line.product_id for line in self.lines}


def invoice_number(year: int, counter: int) -> str:
    """``INV-2026-000042``: the year of shipping and that year's counter, from 1, no gaps."""
    return f"INV-{year}-{counter:06d}"


# --- delivery addresses -------------------------------------------------------------------------

MAX_ADDRESSES = 20
# Each field's bounds: (least, most) characters.
ADDRESS_LIMITS: dict[str, tuple[int, int]] = {
    "label": (0, 64),
    "recipient": (1, 128),
    "company": (0, 128),
    "line1": (1, 128),
    "line2": (0, 128),
    "postal_code": (1, 16),
    "city": (1, 64),
    "country": (2, 2),
    "phone": (0, 32),
}
PHONE_RE = re.compile(r"^[0-9 +()\-]*$")


def validate_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code that exists, in any case; upper case back."""
    if not isinstance(code, str) or len(code) != 2 or not code.isascii() or not code.isalpha():
        raise InvalidCountry(str(code))
    if pycountry.countries.get(alpha_2=code.upper()) is None:
        raise InvalidCountry(code)
    return code.upper()


def validate_address_field(name: str, value: str) -> str:
    if name == "country":
        return validate_country(value)
    least, most = ADDRESS_LIMITS[name]
    if not isinstance(value, str):
        raise InvalidAddress(f"{name} must be text, got {value!r}")
    cleaned = value.strip()
    if not least <= len(cleaned) <= most:
        raise InvalidAddress(f"{name} must be {least} to {most} characters")
    if name == "phone" and not PHONE_RE.fullmatch(cleaned):
        raise InvalidAddress("phone may hold only digits, spaces and + ( ) -")
    return cleaned


@dataclass(frozen=True)  # not kw_only: the ORM builds it from its columns, in field order
class DeliveryAddress:
    """Where an order goes: the address as it was when the order was placed."""

    recipient: str
    company: str
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str
    phone: str


DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryAddress))


@dataclass(eq=False, kw_only=True)
class Address:
    """One address of a customer's book. Its fields are checked by ``AddressBook``, which
    also keeps exactly one of the book's addresses the default."""

    customer_id: int
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
    id: int | None = None

    EDITABLE: ClassVar[tuple[str, ...]] = tuple(ADDRESS_LIMITS)

    def __post_init__(self) -> None:
        for name in self.EDITABLE:
            setattr(self, name, validate_address_field(name, getattr(self, name)))

    def delivery(self) -> DeliveryAddress:
        """The copy an order keeps."""
        return DeliveryAddress(**{name: getattr(self, name) for name in DELIVERY_FIELDS})


@dataclass(eq=False, kw_only=True)
class AddressBook:
    """A customer's addresses: at most ``MAX_ADDRESSES``, and exactly one the default whenever
    there is any. Loaded with the customer locked, so concurrent changes take turns."""

    customer_id: int
    addresses: list[Address]

    def find(self, address_id: int) -> Address | None:
        return next((a for a in self.addresses if a.id == address_id), None)

    @property
    def default(self) -> Address | None:
        return next((a for a in self.addresses if a.is_default), None)

    def add(self, address: Address, *, make_default: bool = False) -> None:
        """The first address is the default; a later one only when asked."""
        if len(self.addresses) >= MAX_ADDRESSES:
            raise AddressBookFull(MAX_ADDRESSES)
        address.is_default = False
        self.addresses.append(address)
        if make_default or self.default is None:
            self._make_default(address)

    def update(self, address: Address, changes: Mapping[str, Any]) -> None:
        """Change the fields given (all checked before any is applied); ``is_default: True``
        moves the default here, ``False`` is refused on the default."""
        changes = dict(changes)
        make_default = changes.pop("is_default", None)
        unknown = changes.keys() - set(Address.EDITABLE)
        if unknown:
            raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
        if make_default is False and address.is_default:
            raise DefaultAddressRequired(address.id or 0)
        checked = {name: validate_address_field(name, v) for name, v in changes.items()}
        for name, value in checked.items():
            setattr(address, name, value)
        if make_default:
            self._make_default(address)

    def remove(self, address: Address) -> None:
        """Out of the book; if it was the default, the most recently added one left is."""
        self.addresses.remove(address)
        if address.is_default and self.addresses:
            newest = max(self.addresses, key=lambda a: a.id or 0)
            self._make_default(newest)

    def _make_default(self, address: Address) -> None:
        for other in self.addresses:
            other.is_default = other is address


@dataclass(eq=False, kw_only=True)
class User:
    username: str
    password_hash: str
    is_staff: bool = False
    is_active: bool = True
    # Every access token carries the version it was issued at; a new password moves it on,
    # so every token issued before stops working at once.
    token_version: int = 0
    id: int | None = None

    def deactivate(self) -> None:
        self.is_active = False

    def activate(self) -> None:
        self.is_active = True

    def set_password_hash(self, password_hash: str) -> None:
        """A new password: the tokens issued under the old one stop working."""
        self.password_hash = password_hash
        self.token_version += 1


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
