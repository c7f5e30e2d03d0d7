"""Orders keep their totals: ``orders.subtotal`` and ``orders.vat_total``.

The dashboard's sales panel summed 30 days of order lines on every view (400 ms at 100,000
orders); an order's net and VAT never change once it is placed, so the service now writes them
with the order's row and the panel sums those.

* Both columns are nullable, with no default: an instance of the previous release keeps
  inserting orders without them during a rolling deploy, and the reads sum the lines of such an
  order (``sql_reads.py``), so the figures stay exact whoever wrote the row.
* Existing orders are filled from their lines, each line's VAT rounded to the cent half up on
  its own (``domain.model.line_amounts``), ``BATCH`` orders per transaction on PostgreSQL (short
  row locks: the running release keeps changing statuses), in id order; orders inserted while
  this runs without totals are left to the reads' fallback.
* ``ix_orders_created_without_totals``: a partial index of the orders without totals (on
  ``created_at``, ``WHERE subtotal IS NULL``), built after the backfill, so nearly empty: the
  sales read finds the rows whose lines it must sum through it. On PostgreSQL it is built
  CONCURRENTLY (orders stay writable), and an interrupted build's invalid index is dropped and
  built again, as in 0007.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 5000
INDEX = "ix_orders_created_without_totals"

# Money is NUMERIC on PostgreSQL, integer hundredths on SQLite (orm.Hundredths); so are the
# lines' unit_price and vat_rate, whence two ways of rounding one line's VAT half up.
LINE_VAT = {
    "postgresql": "ROUND(l.unit_price * l.quantity * l.vat_rate * 0.01, 2)",
    "sqlite": "((l.unit_price * l.quantity * l.vat_rate + 5000) / 10000)",
}
FILL = (
    "UPDATE orders SET "
    "subtotal = (SELECT COALESCE(SUM(l.unit_price * l.quantity), 0) FROM order_lines l "
    "WHERE l.order_id = orders.id), "
    "vat_total = (SELECT COALESCE(SUM({line_vat}), 0) FROM order_lines l "
    "WHERE l.order_id = orders.id) "
    "WHERE orders.id > :after AND orders.id <= :until AND orders.subtotal IS NULL"
)


def _amount() -> sa.types.TypeEngine[Any]:
    # orm.OrderAmount: an order can cost more than one price may (100 lines of 10,000 units).
    return sa.Numeric(20, 2).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("subtotal", _amount(), nullable=True))
        batch.add_column(sa.Column("vat_total", _amount(), nullable=True))
    bind = op.get_bind()
    dialect = bind.dialect.name
    fill = sa.text(FILL.format(line_vat=LINE_VAT["sqlite" if dialect == "sqlite" else dialect]))
    last = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM orders")).scalar_one()
    if dialect != "postgresql":
        # SQLite runs every migration in one transaction (migrations/runner.py).
        bind.execute(fill, {"after": 0, "until": last})
        _build_index()
        return
    # The columns are committed first; then each batch's UPDATE is a transaction of its own
    # (autocommit), so no row stays locked for longer than its batch.
    with op.get_context().autocommit_block():
        for after in range(0, last, BATCH):
            bind.execute(fill, {"after": after, "until": after + BATCH})
    _build_index()


def _build_index() -> None:
    where = sa.text("subtotal IS NULL")
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(INDEX, "orders", ["created_at"], sqlite_where=where)
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND NOT i.indisvalid"
            ),
            {"name": INDEX},
        )
        if invalid.first() is not None:
            op.drop_index(INDEX, table_name="orders", postgresql_concurrently=True)
        op.create_index(
            INDEX,
            "orders",
            ["created_at"],
            postgresql_where=where,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="orders", postgresql_concurrently=True, if_exists=True)
    else:
        op.drop_index(INDEX, table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("vat_total")
        batch.drop_column("subtotal")
