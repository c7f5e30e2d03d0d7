"""The bench's data: a throwaway database, its catalogue and customers, and the stock books.

Every column of v1.1 is filled as the service fills it (a product's SKU, unit, description and
VAT rate; an order line's copies of them), so the service and the bare app read and write rows
like the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from knobs import say

PRODUCTS = 1_000
BIG_CATALOGUE = 100_000
CUSTOMERS = 50
INITIAL_STOCK = 1_000_000
PAGE_SIZE = 20
PASSWORD = "bench-password-long-enough"  # noqa: S105 - throwaway users of a throwaway database
HISTORY_CUSTOMERS = {"history10": 10, "history10k": 10_000}


def customer_names() -> list[str]:
    return [f"customer{i:02d}" for i in range(1, CUSTOMERS + 1)]


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A new database on the server of ``admin_url``, dropped at the end; yields its URL."""
    base = make_url(admin_url)
    name = f"opply_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    say(f"created database {name}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        say(f"dropped database {name}")


def migrated_engine(database_url: str) -> Engine:
    from opply.adapters.database import make_engine
    from opply.adapters.migrations import runner

    engine = make_engine(database_url)
    runner.upgrade(engine)
    return engine


def vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# Each order's net and VAT, as the service stores them on its row when it places it (migration
# 0008): its lines' sums, each line's VAT rounded to the cent (half up) on its own.
STORE_TOTALS = text(
    "UPDATE orders SET "
    "subtotal = (SELECT sum(l.unit_price * l.quantity) FROM order_lines l "
    "WHERE l.order_id = orders.id), "
    "vat_total = (SELECT sum(round(l.unit_price * l.quantity * l.vat_rate * 0.01, 2)) "
    "FROM order_lines l WHERE l.order_id = orders.id) "
    "WHERE subtotal IS NULL"
)


def load(engine: Engine) -> dict[str, int]:
    """The catalogue, the customers (one argon2 hash, reused) and the history customers' orders;
    returns every user's id by name."""
    from opply.adapters.passwords import Argon2PasswordHasher

    password_hash = Argon2PasswordHasher().hash(PASSWORD)
    with engine.begin() as conn:
        add_products(conn, 1, PRODUCTS)
        conn.execute(
            text(
                "INSERT INTO users (username, password_hash, is_staff, is_active, token_version) "
                "VALUES (:u, :h, false, true, 0)"
            ),
            [{"u": u, "h": password_hash} for u in [*customer_names(), *HISTORY_CUSTOMERS]],
        )
        ids = {str(k): int(v) for k, v in conn.execute(text("SELECT username, id FROM users"))}
        for username, count in HISTORY_CUSTOMERS.items():
            add_history(conn, ids[username], count)
        conn.execute(STORE_TOTALS)
        # The history orders' units were taken from stock, so the books balance from the start.
        conn.execute(
            text(
                "UPDATE products p SET quantity_in_stock = :initial - s.units FROM "
                "(SELECT product_id, sum(quantity) AS units FROM order_lines "
                "GROUP BY product_id) s "
                "WHERE s.product_id = p.id"
            ),
            {"initial": INITIAL_STOCK},
        )
    vacuum(engine)
    return ids


def add_products(conn: Connection, first: int, last: int) -> None:
    """Products ``first`` to ``last``: SKUs as the service gives them (``P-000007``), a few
    units and the three VAT rates an EU catalogue has (0, 7 and 19%)."""
    conn.execute(
        text(
            "INSERT INTO products "
            "(name, price, quantity_in_stock, sku, unit, description, vat_rate) "
            "SELECT 'Product ' || i, (i % 97) + 1.5, :stock, "
            "'P-' || lpad(i::text, greatest(6, length(i::text)), '0'), "
            "(ARRAY['unit', 'kg', 'bag', 'box'])[i % 4 + 1], "
            "'Bench product ' || i || ', packed for trade', "
            "(ARRAY[0, 7, 19])[i % 3 + 1] "
            "FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS i"
        ),
        {"a": first, "b": last, "stock": INITIAL_STOCK},
    )


def add_history(conn: Connection, customer_id: int, count: int) -> None:
    """``count`` placed orders of two lines each, a minute apart, copying their products'
    SKU, name, unit, price and VAT rate as an order does."""
    conn.execute(
        text(
            "INSERT INTO orders (customer_id, status, currency, created_at) "
            "SELECT :c, 'placed', 'EUR', now() - i * interval '1 minute' "
            "FROM generate_series(1, CAST(:n AS integer)) AS i"
        ),
        {"c": customer_id, "n": count},
    )
    conn.execute(
        text(
            "INSERT INTO order_lines "
            "(order_id, product_id, sku, product_name, unit, unit_price, vat_rate, quantity) "
            "SELECT o.id, p.id, p.sku, p.name, p.unit, p.price, p.vat_rate, 1 "
            "FROM orders o JOIN products p "
            "ON p.id IN (o.id % :n + 1, (o.id + :half) % :n + 1) "
            "WHERE o.customer_id = :c"
        ),
        {"c": customer_id, "n": PRODUCTS, "half": PRODUCTS // 2},
    )


def grow_catalogue(engine: Engine) -> None:
    with engine.begin() as conn:
        add_products(conn, PRODUCTS + 1, BIG_CATALOGUE)
    vacuum(engine)


def books_balance(engine: Engine) -> tuple[bool, int]:
    """Every product: stock + units in placed orders == the initial stock. Returns whether they
    balance and the units sold."""
    with engine.connect() as conn:
        wrong = conn.execute(
            text(
                "SELECT count(*) FROM products p LEFT JOIN ("
                "  SELECT l.product_id, sum(l.quantity) AS units FROM order_lines l "
                "  JOIN orders o ON o.id = l.order_id AND o.status = 'placed' "
                "  GROUP BY l.product_id) s ON s.product_id = p.id "
                "WHERE p.quantity_in_stock + coalesce(s.units, 0) <> :initial"
            ),
            {"initial": INITIAL_STOCK},
        ).scalar_one()
        sold = conn.execute(
            text(
                "SELECT coalesce(sum(l.quantity), 0) FROM order_lines l "
                "JOIN orders o ON o.id = l.order_id AND o.status = 'placed'"
            )
        ).scalar_one()
    return wrong == 0, int(sold)


def user_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows: Any = conn.execute(text("SELECT username, id FROM users"))
        return {str(k): int(v) for k, v in rows}
