"""Order events: the outbox every status change writes to in its own transaction.

A new table only, so the previous release keeps running against the migrated database (it just
writes no events). Orders placed before this release have no events: the feed starts with the
first change made after it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "order_events",
        sa.Column(
            "id", sa.Integer() if sqlite else sa.BigInteger(), primary_key=True, nullable=False
        ),
        # The writing transaction's id (PostgreSQL's xid8, as a bigint); 0 on SQLite.
        sa.Column("tx_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name="fk_order_events_order_id_orders",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["users.id"],
            name="fk_order_events_customer_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_order_events_customer_position", "order_events", ["customer_id", "tx_id", "id"]
    )
    op.create_index("ix_order_events_position", "order_events", ["tx_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_order_events_position", table_name="order_events")
    op.drop_index("ix_order_events_customer_position", table_name="order_events")
    op.drop_table("order_events")
