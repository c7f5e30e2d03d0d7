"""The admin's dashboard: indexes for its panels.

``ix_orders_status_created`` serves "to ship" (the oldest placed orders, and their count) and the
export filtered by status; ``ix_products_stock`` serves "running low" (the products with the
least stock first). On PostgreSQL both are built CONCURRENTLY, outside a transaction, so the
orders and products stay writable while the previous release keeps running; a build that was
interrupted leaves an invalid index behind, which is dropped and built again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_orders_status_created": ("orders", ["status", "created_at", "id"]),
    "ix_products_stock": ("products", ["quantity_in_stock", "id"]),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, (table, columns) in INDEXES.items():
            op.create_index(name, table, columns)
        return
    with op.get_context().autocommit_block():
        for name, (table, columns) in INDEXES.items():
            invalid = op.get_bind().execute(
                sa.text(
                    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = :name AND NOT i.indisvalid"
                ),
                {"name": name},
            )
            if invalid.first() is not None:
                op.drop_index(name, table_name=table, postgresql_concurrently=True)
            op.create_index(name, table, columns, postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if not postgres:
        for name, (table, _) in INDEXES.items():
            op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        for name, (table, _) in INDEXES.items():
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
