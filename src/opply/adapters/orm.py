"""Tables and imperative mappings of the domain classes (SQLAlchemy 2 style).

The tables here describe the schema for the mappers; Alembic migrations create it. Database
constraints back the domain rules: stock and prices can never go negative, whatever the code does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import composite, registry
from sqlalchemy.types import TypeDecorator, TypeEngine

from opply.domain.model import (
    CENT,
    DELIVERY_FIELDS,
    Address,
    DeliveryAddress,
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
mapper_registry = registry(metadata=metadata)


class Hundredths(TypeDecorator[Decimal]):
    """An exact decimal with two places: NUMERIC(precision, 2) where the database has it,
    integer hundredths on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(12, 2)
    cache_ok = True
    precision = 12

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return int(Decimal(value).quantize(CENT) * 100)
        return Decimal(value).quantize(CENT)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(CENT)
        return Decimal(value).quantize(CENT)


class Money(Hundredths):
    """Exact money, up to 9,999,999,999.99."""

    cache_ok = True


class OrderAmount(Hundredths):
    """An order's net or VAT total: up to 100 lines of 10,000 units at the highest price,
    about 10^16 (NUMERIC(20, 2); integer hundredths fit a 64-bit integer on SQLite)."""

    impl = Numeric(20, 2)
    precision = 20
    cache_ok = True


class Percent(Hundredths):
    """A percentage with two places, 0.00 to 100.00 (a VAT rate)."""

    impl = Numeric(5, 2)
    precision = 5
    cache_ok = True


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def delivery_column(name: str) -> str:
    """The orders column that holds a field of the delivery address."""
    return f"delivery_{name}"


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_staff", Boolean(create_constraint=False), nullable=False, default=False),
    Column("is_active", Boolean(create_constraint=False), nullable=False, default=True),
    Column("token_version", Integer, nullable=False, default=0),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("price", Money(), nullable=False),
    Column("quantity_in_stock", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("unit", String(32), nullable=False, default="unit"),
    Column("description", Text, nullable=False, default=""),
    Column("vat_rate", Percent(), nullable=False, default=Decimal("0.00")),
    Column("min_order_quantity", Integer, nullable=False, default=1),
    Column("case_size", Integer, nullable=False, default=1),
    CheckConstraint("quantity_in_stock >= 0", name="quantity_in_stock_not_negative"),
    CheckConstraint("price >= 0", name="price_not_negative"),
    CheckConstraint("vat_rate >= 0", name="vat_rate_not_negative"),
)
# SKUs are unique ignoring case. (On PostgreSQL the migration adds trigram indexes for the
# catalogue search, which matches names and SKUs anywhere inside them.)
Index("ix_products_sku_lower", func.lower(products.c.sku), unique=True)
# The dashboard's "running low": the products with the least stock first.
Index("ix_products_stock", products.c.quantity_in_stock, products.c.id)

order_status = Enum(
    OrderStatus,
    name="order_status",
    native_enum=False,
    create_constraint=False,  # the migration owns the CHECK constraint
    length=16,
    values_callable=lambda enum: [member.value for member in enum],
    validate_strings=True,
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("status", order_status, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("shipped_at", UTCDateTime(), nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    # The delivery address copied when placed: delivery_recipient, ... (all NULL: none).
    *(Column(delivery_column(name), String(128), nullable=True) for name in DELIVERY_FIELDS),
    Column("invoice_number", String(32), nullable=True),
    # The order's net and VAT (its lines' sums, each line rounded as the domain rounds it),
    # written when it is placed (migration 0008): the dashboard's sales sum these, not the
    # lines. NULL on an order an instance of the release before wrote; the reads then sum
    # its lines.
    Column("subtotal", OrderAmount(), nullable=True),
    Column("vat_total", OrderAmount(), nullable=True),
    Index("ix_orders_customer_created", "customer_id", "created_at", "id"),
    Index("ix_orders_created", "created_at", "id"),
    # The dashboard's "to ship" (placed, oldest first) and the export by status.
    Index("ix_orders_status_created", "status", "created_at", "id"),
    # The dashboard's sales: the orders written without stored totals (migration 0008), few.
    Index(
        "ix_orders_created_without_totals",
        "created_at",
        postgresql_where=text("subtotal IS NULL"),
        sqlite_where=text("subtotal IS NULL"),
    ),
)

# Customers' address books. Exactly one default per non-empty book is kept by AddressBook
# with the customer's row locked; this partial unique index stands behind it.
addresses = Table(
    "addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(64), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("company", String(128), nullable=False),
    Column("line1", String(128), nullable=False),
    Column("line2", String(128), nullable=False),
    Column("postal_code", String(16), nullable=False),
    Column("city", String(64), nullable=False),
    Column("country", String(2), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("is_default", Boolean(create_constraint=False), nullable=False),
    Index("ix_addresses_customer_id", "customer_id"),
)
ADDRESS_DEFAULT_INDEX = "uq_addresses_one_default"
Index(
    ADDRESS_DEFAULT_INDEX,
    addresses.c.customer_id,
    unique=True,
    postgresql_where=addresses.c.is_default,
    sqlite_where=addresses.c.is_default,
)

# One row per year: the last invoice number given that year. Taken with an UPDATE in the ship's
# transaction (its row lock serialises shippers; a rollback undoes it): no gaps, unlike a
# sequence.
invoice_counters = Table(
    "invoice_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last_number", Integer, nullable=False),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", Integer, ForeignKey("products.id"), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("unit", String(32), nullable=False),
    Column("unit_price", Money(), nullable=False),
    Column("vat_rate", Percent(), nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    Index("ix_order_lines_product_id", "product_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# One row (id 1): the number of products, kept exact by triggers (migration 0002), so a page of
# the catalogue needs no COUNT(*) over the whole table.
product_stats = Table(
    "product_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("product_count", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("customer_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=True),
    Column("response", JSON(), nullable=True),
)

# The outbox of order events (migration 0004): written by the unit of work in the transaction
# that changed the order, read by the customer's feed and the webhook worker in (tx_id, id)
# order. tx_id is the writing transaction's id on PostgreSQL, 0 on SQLite (docs/architecture.md,
# "Order events").
order_events = Table(
    "order_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("tx_id", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("payload", JSON(), nullable=False),
    Index("ix_order_events_customer_position", "customer_id", "tx_id", "id"),
    Index("ix_order_events_position", "tx_id", "id"),
    sqlite_autoincrement=True,  # ids never reused, even after the newest row is deleted
)

# Webhooks (migration 0005): the staff's endpoints, one delivery per (event, endpoint), each
# attempt of it, and the fan-out's cursor in the global event stream (docs/architecture.md,
# "Webhooks").
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON(), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("secret", String(100), nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("failing_since", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "event_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("order_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    UniqueConstraint("event_id", "endpoint_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    sqlite_autoincrement=True,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "delivery_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
    sqlite_autoincrement=True,
)

# One row (id 1): where the fan-out stands in the (tx_id, id) order of order_events.
webhook_fanout = Table(
    "webhook_fanout",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tx_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

_mapped = False


def _nothing_recorded_yet(order: Order, _context: Any) -> None:
    order.events = []


def _no_address(*values: str | None) -> bool:
    """An order placed with an empty address book (or before addresses) has none."""
    return all(value is None for value in values)


def start_mappers() -> None:
    """Map the domain classes onto the tables, once per process."""
    global _mapped
    if _mapped:
        return
    mapper_registry.map_imperatively(User, users)
    mapper_registry.map_imperatively(Product, products)
    # OrderLine is a frozen value object, which the ORM cannot instrument; its rows are written
    # and read by the order repository in one statement per batch (see SqlOrderRepository).
    mapper_registry.map_imperatively(
        Order,
        orders,
        # Written once with the order's row (SqlOrderRepository.add), read only by the reads.
        exclude_properties=["subtotal", "vat_total"],
        properties={
            "delivery_address": composite(
                DeliveryAddress,
                *(orders.c[delivery_column(name)] for name in DELIVERY_FIELDS),
                return_none_on=_no_address,
            )
        },
    )
    # An order loaded from the database has recorded nothing yet in this unit of work (the ORM
    # builds it without calling __init__, so the dataclass default is not there).
    event.listen(Order, "load", _nothing_recorded_yet)
    mapper_registry.map_imperatively(Address, addresses)
    mapper_registry.map_imperatively(RefreshToken, refresh_tokens)
    mapper_registry.map_imperatively(IdempotencyRecord, idempotency_keys)
    _mapped = True
