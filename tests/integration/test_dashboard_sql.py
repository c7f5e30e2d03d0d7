"""The dashboard's and the export's reads on the real engines: one statement per panel, the
export's connection given back however the stream ends, and indexes the plans use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text

from opply.adapters.database import make_session_factory
from opply.adapters.memory import FixedClock
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.application.dashboard import ExportOrders, ExportQuery, ShowDashboard
from opply.application.dto import ExportFilter
from tests.integration.conftest import Database, count_statements
from tests.integration.contract import T0, add_order, add_products, add_user


@pytest.fixture
def engines_uow(committed_db: Database) -> SqlUnitOfWork:
    """Units of work on the database's own engines (a connection per unit of work, from the
    pools), with real commits, emptied afterwards."""
    return SqlUnitOfWork(
        read_bind=committed_db.read_engine,
        session_factory=make_session_factory(committed_db.engine),
    )


def some_orders(uow: SqlUnitOfWork, count: int) -> None:
    buyer = add_user(uow)
    a, b = add_products(uow, ("Oat", 5), ("Rye", 50))
    for n in range(count):
        add_order(uow, buyer, a, b, at=T0 - timedelta(hours=n))


def test_the_dashboard_reads_one_statement_per_panel_however_many_orders(
    committed_db: Database, engines_uow: SqlUnitOfWork
) -> None:
    show = ShowDashboard(engines_uow, FixedClock(T0 + timedelta(hours=1)), "Europe/Berlin", 10)
    some_orders(engines_uow, 2)
    with count_statements(committed_db.read_engine) as few:
        small = show()
    some_orders(engines_uow, 30)
    with count_statements(committed_db.read_engine) as many:
        big = show()
    panels = 4  # to ship, running low, sales, integrations (SQLite's reads also send a BEGIN)
    selects = [[s for s in c.statements if s.lstrip().startswith("SELECT")] for c in (few, many)]
    assert [len(s) for s in selects] == [panels, panels]
    assert (small.to_ship.waiting, big.to_ship.waiting) == (2, 32)
    assert sum(day.orders for day in big.sales) == 32


def checked_out(engine: Engine) -> int:
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]


def test_an_export_closed_half_way_gives_its_connection_back(
    committed_db: Database, engines_uow: SqlUnitOfWork
) -> None:
    some_orders(engines_uow, 5)
    export = ExportOrders(engines_uow, FixedClock(T0), "UTC")
    before = checked_out(committed_db.read_engine)
    rows = export(ExportQuery(first_day=T0.date() - timedelta(days=2), last_day=T0.date()))
    first = next(rows)
    assert checked_out(committed_db.read_engine) == before + 1
    rows.close()  # as a client that goes away mid-download makes the server close the answer
    assert checked_out(committed_db.read_engine) == before
    assert first.customer

    everything = list(
        export(ExportQuery(first_day=T0.date() - timedelta(days=2), last_day=T0.date()))
    )
    assert len(everything) == 10
    assert checked_out(committed_db.read_engine) == before


def test_after_an_export_the_read_connection_is_back_in_autocommit(
    committed_db: Database, engines_uow: SqlUnitOfWork
) -> None:
    """The export reads through a server-side cursor inside a REPEATABLE READ transaction on
    PostgreSQL; the pool must give the connection back to the other reads in autocommit."""
    if not committed_db.is_postgres:
        pytest.skip("SQLite has one engine and no autocommit read connections")
    some_orders(engines_uow, 3)
    with engines_uow.read() as reads:
        assert (
            len(
                list(
                    reads.order_lines_export(
                        ExportFilter(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1)),
                        chunk=2,
                    )
                )
            )
            == 6
        )
    engine = committed_db.read_engine
    pool_size = engine.pool.size()  # type: ignore[attr-defined]
    connections = [engine.connect() for _ in range(pool_size)]
    try:
        for connection in connections:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            assert raw.autocommit  # type: ignore[attr-defined]
            assert not raw.readonly  # type: ignore[attr-defined]
    finally:
        for connection in connections:
            connection.close()


@pytest.fixture
def many_orders_without_statistics(committed_db: Database) -> Engine:
    """100,000 orders of two lines, mostly delivered, over 90 days, on a table that was never
    analysed (autovacuum may be off): the plans must find the indexes on their own."""
    if not committed_db.is_postgres:
        pytest.skip("EXPLAIN's plans are PostgreSQL's")
    engine = committed_db.engine
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, password_hash, is_staff, is_active, token_version) "
                "VALUES ('plans', 'x', false, true, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO products (name, price, quantity_in_stock, sku, unit, description, "
                "vat_rate) SELECT 'P' || i, 2.50, i % 500, 'PL-' || i, 'unit', '', 7 "
                "FROM generate_series(1, 100000) AS i"
            )
        )
        connection.execute(
            text(
                "INSERT INTO orders (customer_id, status, currency, created_at) "
                "SELECT (SELECT id FROM users WHERE username = 'plans'), "
                "(ARRAY['delivered', 'delivered', 'shipped', 'placed', 'cancelled'])[i % 5 + 1], "
                "'EUR', now() - i * interval '77 seconds' "
                "FROM generate_series(1, 100000) AS i"
            )
        )
        connection.execute(
            text(
                "INSERT INTO order_lines (order_id, product_id, sku, product_name, unit, "
                "unit_price, vat_rate, quantity) "
                "SELECT o.id, p.id, p.sku, p.name, p.unit, p.price, p.vat_rate, 1 "
                "FROM orders o JOIN products p ON p.id IN (o.id % 5000 + 1, (o.id + 7) % 5000 + 1)"
            )
        )
        # Their totals as the service stores them, but for the newest 1,000: inserted by the
        # release before 0008 during a rolling deploy, whose lines the reads sum.
        connection.execute(
            text(
                "UPDATE orders o SET subtotal = s.net, vat_total = s.vat FROM "
                "(SELECT order_id, sum(unit_price * quantity) AS net, "
                "sum(round(unit_price * quantity * vat_rate * 0.01, 2)) AS vat "
                "FROM order_lines GROUP BY order_id) s "
                "WHERE s.order_id = o.id AND o.created_at < now() - interval '77000 seconds'"
            )
        )
    return engine


def test_each_panel_reads_through_an_index_at_100000_orders_without_statistics(
    many_orders_without_statistics: Engine, committed_db: Database
) -> None:
    uow = SqlUnitOfWork(
        read_bind=committed_db.read_engine,
        session_factory=make_session_factory(committed_db.engine),
    )
    seen: list[tuple[str, object]] = []

    def keep(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        seen.append((statement, parameters))

    clock = FixedClock(datetime.now(UTC))
    event.listen(committed_db.read_engine, "before_cursor_execute", keep)
    try:
        dashboard = ShowDashboard(uow, clock, "Europe/Berlin", 10)()
    finally:
        event.remove(committed_db.read_engine, "before_cursor_execute", keep)
    assert dashboard.to_ship.waiting == 20_000
    assert sum(day.orders for day in dashboard.sales) > 0

    plans = []
    with committed_db.read_engine.connect() as connection:
        for statement, parameters in seen:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)  # type: ignore[arg-type]
            plans.append("\n".join(row[0] for row in rows))
    to_ship, running_low, sales, integrations = plans
    assert "ix_orders_status_created" in to_ship, to_ship
    assert "ix_products_stock" in running_low, running_low
    assert "ix_orders_created" in sales or "ix_orders_status_created" in sales, sales
    # The lines only through their primary key, for the orders without stored totals.
    assert "Seq Scan on order_lines" not in sales, sales
    assert "pk_order_lines" in sales, sales
    assert "webhook_endpoints" in integrations, integrations
    for plan in plans:
        assert "Seq Scan on orders" not in plan, plan
