"""v1.2 ordering: where an order goes, cases and minimums, invoices.

* ``products`` gains ``min_order_quantity`` and ``case_size`` (server default 1: every product
  from before, and every product an instance of the previous release creates, orders as before);
* ``orders`` gains the delivery address it was placed with (``delivery_recipient``, ...) and its
  ``invoice_number``, all nullable: orders from before have neither;
* ``addresses`` (the customers' books, at most one default each: a partial unique index) and
  ``invoice_counters`` (one row per year, the last number given) are new.

Every change is additive and takes no long lock: PostgreSQL adds a nullable column, or one with a
constant default, without rewriting the table (11 and later), and the new tables' indexes are
built while they are empty. No index is added to ``orders`` (building one would block writes
to a big table): the counter is what keeps invoice numbers unique.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DELIVERY_COLUMNS = [
    f"delivery_{name}"
    for name in (
        "recipient",
        "company",
        "line1",
        "line2",
        "postal_code",
        "city",
        "country",
        "phone",
    )
]
# On SQLite, dropping a column may copy the table into a new one: the triggers of 0002 that keep
# the catalogue's size go with the old table, so they are made again (as 0003 does).
SQLITE_COUNT_TRIGGERS = [
    "DROP TRIGGER IF EXISTS products_counted_insert",
    "DROP TRIGGER IF EXISTS products_counted_delete",
    "CREATE TRIGGER products_counted_insert AFTER INSERT ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count + 1 WHERE id = 1; END",
    "CREATE TRIGGER products_counted_delete AFTER DELETE ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count - 1 WHERE id = 1; END",
    "UPDATE product_stats SET product_count = (SELECT count(*) FROM products) WHERE id = 1",
]


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column("min_order_quantity", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("case_size", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("orders") as batch:
        for column in DELIVERY_COLUMNS:
            batch.add_column(sa.Column(column, sa.String(128), nullable=True))
        batch.add_column(sa.Column("invoice_number", sa.String(32), nullable=True))

    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_addresses_customer_id_users", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("company", sa.String(128), nullable=False),
        sa.Column("line1", sa.String(128), nullable=False),
        sa.Column("line2", sa.String(128), nullable=False),
        sa.Column("postal_code", sa.String(16), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("is_default", sa.Boolean(create_constraint=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_addresses"),
    )
    op.create_index("ix_addresses_customer_id", "addresses", ["customer_id"])
    op.create_index(
        "uq_addresses_one_default",
        "addresses",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_invoice_counters"),
    )


def downgrade() -> None:
    op.drop_table("invoice_counters")
    op.drop_index("uq_addresses_one_default", table_name="addresses")
    op.drop_index("ix_addresses_customer_id", table_name="addresses")
    op.drop_table("addresses")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("invoice_number")
        for column in reversed(DELIVERY_COLUMNS):
            batch.drop_column(column)
    # SQLite's table copy reflects products, which cannot hold this index: it is made again last.
    op.drop_index("ix_products_sku_lower", table_name="products")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("case_size")
        batch.drop_column("min_order_quantity")
    op.create_index("ix_products_sku_lower", "products", [sa.text("lower(sku)")], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_COUNT_TRIGGERS:
            op.execute(statement)
