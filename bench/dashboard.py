"""The admin dashboard's row of `make bench`: its queries at 100,000 orders, timed in-process.

The page is for a handful of staff, not for load: what matters is how long its reads take on a
big order table, so the row times the use case itself (``ShowDashboard``: one statement per
panel) through the service's own container and read engine, one call after another. The orders
are grown to 100,000 first (two lines each, over the last 90 days, one in five placed and one
in ten cancelled, each with its totals stored as the service stores them) and, on purpose, not
analysed: the plans must find the indexes without fresh statistics, as on a database whose
autovacuum has not come round yet.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import Engine, event, text

from dataset import INITIAL_STOCK, PRODUCTS
from knobs import Knobs, say
from tools import Load

ORDERS = 100_000
LOW_PRODUCTS = 500
QUICK_CALLS = 20
CALLS = 200


def grow_orders(engine: Engine) -> int:
    """Orders up to ``ORDERS`` in all (none are added past it); returns how many there are."""
    with engine.begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        missing = max(0, ORDERS - int(have))
        if missing:
            # Each row written once with its net and VAT, as the service writes an order: the
            # sums of the two lines inserted next (their products follow from the order's id).
            line_products = "FROM products p WHERE p.id IN (o.id % :p + 1, (o.id + :half) % :p + 1)"
            conn.execute(
                text(
                    "INSERT INTO orders (id, customer_id, status, currency, created_at, "
                    "subtotal, vat_total) "
                    "SELECT o.id, (SELECT min(id) FROM users), "
                    "(ARRAY['placed', 'shipped', 'delivered', 'delivered', 'placed', "
                    "'delivered', 'shipped', 'delivered', 'delivered', 'cancelled'])"
                    "[o.i % 10 + 1],"
                    " 'EUR', now() - (o.i * 90 * 86400.0 / :n) * interval '1 second', "
                    f"(SELECT sum(p.price * (1 + o.id % 3)) {line_products}), "
                    "(SELECT sum(round(p.price * (1 + o.id % 3) * p.vat_rate * 0.01, 2)) "
                    f"{line_products}) "
                    "FROM (SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS id, i "
                    "FROM generate_series(1, CAST(:n AS integer)) AS i) o"
                ),
                {"n": missing, "p": PRODUCTS, "half": PRODUCTS // 2},
            )
            conn.execute(
                text(
                    "INSERT INTO order_lines "
                    "(order_id, product_id, sku, product_name, unit, unit_price, vat_rate, "
                    "quantity) "
                    "SELECT o.id, p.id, p.sku, p.name, p.unit, p.price, p.vat_rate, 1 + o.id % 3 "
                    "FROM orders o JOIN products p "
                    "ON p.id IN (o.id % :p + 1, (o.id + :half) % :p + 1) "
                    "WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)"
                ),
                {"p": PRODUCTS, "half": PRODUCTS // 2},
            )
            # Products beyond the first catalogue (if the bench grew it) run low: the oldest
            # placed order took all but 0 to 14 of their units.
            conn.execute(
                text(
                    "INSERT INTO order_lines "
                    "(order_id, product_id, sku, product_name, unit, unit_price, vat_rate, "
                    "quantity) "
                    "SELECT (SELECT min(id) FROM orders WHERE status = 'placed'), p.id, p.sku, "
                    "p.name, p.unit, p.price, p.vat_rate, :initial - p.id % 15 "
                    "FROM products p WHERE p.id > :p AND p.id <= :p + :low"
                ),
                {"initial": INITIAL_STOCK, "p": PRODUCTS, "low": LOW_PRODUCTS},
            )
            # The oldest placed order got the lines above after it was written: its totals
            # again (one row).
            conn.execute(
                text(
                    "UPDATE orders SET "
                    "subtotal = (SELECT sum(unit_price * quantity) FROM order_lines l "
                    "WHERE l.order_id = orders.id), "
                    "vat_total = (SELECT sum(round(unit_price * quantity * vat_rate * 0.01, 2)) "
                    "FROM order_lines l WHERE l.order_id = orders.id) "
                    "WHERE id = (SELECT min(id) FROM orders WHERE status = 'placed')"
                )
            )
            # The books balance, as the bench checks them: every product's stock is the
            # initial stock less the units of the placed orders.
            conn.execute(
                text(
                    "UPDATE products p SET quantity_in_stock = :initial - s.units FROM "
                    "(SELECT l.product_id, sum(l.quantity) AS units FROM order_lines l "
                    "JOIN orders o ON o.id = l.order_id AND o.status = 'placed' "
                    "GROUP BY l.product_id) s WHERE s.product_id = p.id"
                ),
                {"initial": INITIAL_STOCK},
            )
        return int(have) + missing


def measure(knobs: Knobs, database_url: str, secret_key: str) -> tuple[Load, int, str]:
    """The dashboard's reads, timed call by call: (the figures as a load, the statements of
    one call, a note on the data they read)."""
    from opply.entrypoints.config import Settings
    from opply.entrypoints.container import build_container

    settings = Settings(
        database_url=database_url,
        secret_key=secret_key,
        env="production",
        log_level="WARNING",
        shop_timezone="Europe/Berlin",
    )
    container = build_container(settings)
    show = container.show_dashboard()
    read_engine = container.read_engine()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    try:
        for _ in range(3):  # connections and statement caches warm
            show()
        event.listen(read_engine, "before_cursor_execute", seen)
        dashboard = show()
        event.remove(read_engine, "before_cursor_execute", seen)
        calls = QUICK_CALLS if knobs.quick else CALLS
        say(f"dashboard queries: {calls} calls ({dashboard.to_ship.waiting:,} orders to ship)")
        took = []
        for _ in range(calls):
            started = time.perf_counter()
            show()
            took.append((time.perf_counter() - started) * 1000)
    finally:
        container.engine().dispose()
        read_engine.dispose()
    took.sort()
    load = Load(
        rps=1000 / statistics.fmean(took),
        p50_ms=statistics.median(took),
        p99_ms=took[min(len(took) - 1, round(len(took) * 0.99))],
        requests=len(took),
        statuses={"2xx": len(took)},
    )
    sold = sum(day.orders for day in dashboard.sales)
    note = (
        f"in-process; {sold:,} orders in its 30 days, {dashboard.to_ship.waiting:,} to ship, "
        f"{dashboard.running_low.total:,} running low"
    )
    return load, len(statements), note
