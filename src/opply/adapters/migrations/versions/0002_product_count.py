"""The catalogue's size, kept by triggers, so a product page needs no COUNT(*) over the table.

``product_stats`` holds one row (id 1) with the number of products. Triggers on ``products`` keep
it exact in the same transaction as every insert and delete (a rollback undoes both), and a
trigger on ``product_stats`` keeps its one row from being deleted. See docs/performance.md.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSTGRES_UP = [
    """
    CREATE FUNCTION product_stats_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE product_stats SET product_count = product_count
                + (SELECT count(*) FROM new_products) WHERE id = 1;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE product_stats SET product_count = product_count
                - (SELECT count(*) FROM old_products) WHERE id = 1;
        ELSE
            UPDATE product_stats SET product_count = 0 WHERE id = 1;
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER products_counted_insert AFTER INSERT ON products "
    "REFERENCING NEW TABLE AS new_products FOR EACH STATEMENT "
    "EXECUTE FUNCTION product_stats_count()",
    "CREATE TRIGGER products_counted_delete AFTER DELETE ON products "
    "REFERENCING OLD TABLE AS old_products FOR EACH STATEMENT "
    "EXECUTE FUNCTION product_stats_count()",
    "CREATE TRIGGER products_counted_truncate AFTER TRUNCATE ON products "
    "FOR EACH STATEMENT EXECUTE FUNCTION product_stats_count()",
    "CREATE FUNCTION product_stats_keep_row() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RETURN NULL; END $$",
    "CREATE TRIGGER product_stats_row_kept BEFORE DELETE ON product_stats "
    "FOR EACH ROW EXECUTE FUNCTION product_stats_keep_row()",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS products_counted_insert ON products",
    "DROP TRIGGER IF EXISTS products_counted_delete ON products",
    "DROP TRIGGER IF EXISTS products_counted_truncate ON products",
    "DROP TABLE IF EXISTS product_stats",
    "DROP FUNCTION IF EXISTS product_stats_count()",
    "DROP FUNCTION IF EXISTS product_stats_keep_row()",
]
SQLITE_UP = [
    "CREATE TRIGGER products_counted_insert AFTER INSERT ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count + 1 WHERE id = 1; END",
    "CREATE TRIGGER products_counted_delete AFTER DELETE ON products BEGIN "
    "UPDATE product_stats SET product_count = product_count - 1 WHERE id = 1; END",
    "CREATE TRIGGER product_stats_row_kept BEFORE DELETE ON product_stats BEGIN "
    "SELECT RAISE(IGNORE); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS products_counted_insert",
    "DROP TRIGGER IF EXISTS products_counted_delete",
    "DROP TABLE IF EXISTS product_stats",
]


def upgrade() -> None:
    op.create_table(
        "product_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_product_stats_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_stats")),
    )
    op.execute("INSERT INTO product_stats (id, product_count) SELECT 1, count(*) FROM products")
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_UP if dialect == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_DOWN if dialect == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
