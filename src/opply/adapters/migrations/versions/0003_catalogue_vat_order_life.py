"""v1.1: a realistic catalogue (SKU, unit, description, VAT rate), VAT on order lines, the
order's life (shipped, delivered, with timestamps) and token versions of users.

Every product from before gets the SKU a product created without one gets (``P-`` and its id
padded to 6 digits); every order line from before gets its product's SKU, the unit "unit" and a
VAT rate of 0, so every v1 order keeps its totals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# On SQLite, altering a constraint copies the table into a new one: the triggers of 0002 that
# keep the catalogue's size go with the old table, so they are made again afterwards.
SQLITE_COUNT_TRIGGERS = [
    "DROP TRIGGER IF EXISTS products_counted_insert",
    "DROP TRIGGER IF EXISTS products_counted_delete",
    "CREATE TRIGGER products_counted_insert AFTER INSERT ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count + 1 WHERE id = 1; END",
    "CREATE TRIGGER products_counted_delete AFTER DELETE ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count - 1 WHERE id = 1; END",
    "UPDATE product_stats SET product_count = (SELECT count(*) FROM products) WHERE id = 1",
]
STATUSES_V1 = "status IN ('placed', 'cancelled')"
STATUSES = "status IN ('placed', 'shipped', 'delivered', 'cancelled')"


def _percent() -> sa.types.TypeEngine[Any]:
    # SQLite's NUMERIC is a float: there a percentage is integer hundredths (see orm.Percent).
    if op.get_bind().dialect.name == "sqlite":
        return sa.BigInteger()
    return sa.Numeric(5, 2)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _default_sku(product_id: Any) -> Any:
    if op.get_bind().dialect.name == "sqlite":
        return sa.literal("P-") + sa.func.printf("%06d", product_id)
    # lpad cuts a longer string to the length given: pad only up to six digits, as f"{:06d}".
    digits = sa.cast(product_id, sa.Text)
    return sa.literal("P-") + sa.func.lpad(digits, sa.func.greatest(6, sa.func.length(digits)), "0")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("sku", sa.String(64), nullable=True))
        batch.add_column(sa.Column("unit", sa.String(32), nullable=False, server_default="unit"))
        batch.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("vat_rate", _percent(), nullable=False, server_default="0"))
        batch.create_check_constraint(op.f("ck_products_vat_rate_not_negative"), "vat_rate >= 0")
    products = sa.table("products", sa.column("id", sa.Integer), sa.column("sku", sa.String))
    op.execute(products.update().values(sku=_default_sku(products.c.id)))
    with op.batch_alter_table("products") as batch:
        batch.alter_column("sku", existing_type=sa.String(64), nullable=False)

    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("sku", sa.String(64), nullable=True))
        batch.add_column(sa.Column("unit", sa.String(32), nullable=False, server_default="unit"))
        batch.add_column(sa.Column("vat_rate", _percent(), nullable=False, server_default="0"))
    lines = sa.table("order_lines", sa.column("product_id", sa.Integer), sa.column("sku"))
    op.execute(lines.update().values(sku=_default_sku(lines.c.product_id)))
    with op.batch_alter_table("order_lines") as batch:
        batch.alter_column("sku", existing_type=sa.String(64), nullable=False)

    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("shipped_at", _ts(), nullable=True))
        batch.add_column(sa.Column("delivered_at", _ts(), nullable=True))
        batch.add_column(sa.Column("cancelled_at", _ts(), nullable=True))
        batch.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_status"), STATUSES)
    op.create_index("ix_orders_created", "orders", ["created_at", "id"])

    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")
        )

    # Last: SQLite's table copies above reflect products, which cannot hold this index.
    op.create_index("ix_products_sku_lower", "products", [sa.text("lower(sku)")], unique=True)
    if postgres:
        # The search matches a name or a SKU anywhere inside it: trigram indexes keep it from
        # reading the whole catalogue (pg_trgm is a trusted extension: a database owner may
        # create it, on RDS as well).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_products_name_trgm ON products USING gin (lower(name) gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_products_sku_trgm ON products USING gin (lower(sku) gin_trgm_ops)"
        )
    else:
        for statement in SQLITE_COUNT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # First, for the same reason as it is made last.
    op.drop_index("ix_products_sku_lower", table_name="products")
    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_products_sku_trgm")
        op.execute("DROP INDEX IF EXISTS ix_products_name_trgm")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
    op.drop_index("ix_orders_created", table_name="orders")
    op.execute("UPDATE orders SET status = 'placed' WHERE status IN ('shipped', 'delivered')")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_status"), STATUSES_V1)
        batch.drop_column("cancelled_at")
        batch.drop_column("delivered_at")
        batch.drop_column("shipped_at")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("vat_rate")
        batch.drop_column("unit")
        batch.drop_column("sku")
    with op.batch_alter_table("products") as batch:
        batch.drop_constraint(op.f("ck_products_vat_rate_not_negative"), type_="check")
        batch.drop_column("vat_rate")
        batch.drop_column("description")
        batch.drop_column("unit")
        batch.drop_column("sku")
    if not postgres:
        for statement in SQLITE_COUNT_TRIGGERS:
            op.execute(statement)
