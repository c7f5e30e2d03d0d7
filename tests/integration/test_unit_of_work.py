"""Units of work, in their two modes: a write commits or leaves nothing behind, a read can
neither commit nor write; on SQLite and PostgreSQL the database's own constraints back the
domain, and the migrations go down and up cleanly.
"""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from opply.adapters.database import make_engine, make_read_engine, make_session_factory
from opply.adapters.migrations import runner
from opply.adapters.orm import metadata, order_lines, orders, products
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.application.dto import NewProduct, PageRequest, PlaceOrderCommand, ProductFilter
from opply.application.orders import PlaceOrder
from opply.application.products import CreateProduct
from opply.application.unit_of_work import UnitOfWork, UnitOfWorkError
from opply.domain.errors import OutOfStock
from opply.domain.model import LineRequest, Order, OrderLine, Product, User, default_sku
from tests.integration.conftest import Database
from tests.integration.contract import add_products, add_user

NOW = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
EXPRESSION_INDEXES = {"ix_products_sku_lower", "ix_products_name_trgm", "ix_products_sku_trgm"}


class _Clock:
    def now(self) -> datetime:
        return NOW


class Boom(Exception):
    pass


def line(
    pid: int, quantity: int, *, name: str = "A", price: Decimal = Decimal("1.00")
) -> OrderLine:
    return OrderLine(
        product_id=pid,
        sku=default_sku(pid),
        product_name=name,
        unit="unit",
        unit_price=price,
        vat_rate=Decimal("0.00"),
        quantity=quantity,
    )


def _stocks(uow: UnitOfWork, *product_ids: int) -> list[int | None]:
    with uow.read() as reads:
        found = [reads.product(pid) for pid in product_ids]
    return [None if p is None else p.quantity_in_stock for p in found]


def _rows(uow: SqlUnitOfWork) -> dict[str, int]:
    with uow.read() as reads:
        return {
            table.name: reads.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (products, orders, order_lines)
        }


# --- both modes, every implementation (in memory, SQLite, PostgreSQL) ----------------------


def test_a_committed_change_is_seen_by_the_next_unit_of_work(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat", 10))
    with contract_uow.write() as uow:
        uow.products.get_for_update([pid])[pid].take(4)
        uow.commit()
    assert _stocks(contract_uow, pid) == [6]


def test_leaving_a_write_without_commit_leaves_nothing(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat", 10))
    with contract_uow.write() as uow:
        uow.products.get_for_update([pid])[pid].take(4)
        uow.products.add(Product(name="Never committed", price=Decimal("1.00")))
        uow.users.add(User(username="never-committed", password_hash="-"))
    assert _stocks(contract_uow, pid) == [10]
    with contract_uow.read() as reads:
        assert reads.user("never-committed") is None


def test_an_exception_inside_a_write_rolls_it_back(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat", 10))

    def write_then_fail() -> None:
        with contract_uow.write() as uow:
            uow.products.get_for_update([pid])[pid].take(4)
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()
    assert _stocks(contract_uow, pid) == [10]


def test_changes_after_a_commit_are_rolled_back(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat", 5))
    with contract_uow.write() as uow:
        uow.products.get_for_update([pid])[pid].take(1)
        uow.commit()
        uow.products.get_for_update([pid])[pid].take(1)
    assert _stocks(contract_uow, pid) == [4]


def test_a_commit_outside_its_write_unit_of_work_raises(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat", 5))
    writes = contract_uow.write()
    with pytest.raises(UnitOfWorkError, match="outside"):
        writes.commit()  # never entered
    with writes as uow:
        uow.products.get_for_update([pid])[pid].take(1)
    with pytest.raises(UnitOfWorkError, match="outside"):
        writes.commit()  # after it ended: the change was rolled back and stays so
    assert _stocks(contract_uow, pid) == [5]


def test_a_read_unit_of_work_cannot_commit_and_has_no_repositories(
    contract_uow: UnitOfWork,
) -> None:
    [pid] = add_products(contract_uow, ("Oat", 5))
    with contract_uow.read() as reads:
        with pytest.raises(UnitOfWorkError, match="cannot commit"):
            reads.commit()
        for repository in ("products", "orders", "users", "refresh_tokens", "idempotency"):
            assert not hasattr(reads, repository)
        assert reads.product(pid) is not None


# --- the SQL units of work -------------------------------------------------------------------


def test_a_read_unit_of_work_refuses_a_write_statement(uow: SqlUnitOfWork) -> None:
    [pid] = add_products(uow, ("Oat", 5))
    with uow.read() as reads:
        with pytest.raises(UnitOfWorkError, match="only SELECTs"):
            reads.execute(update(products).values(quantity_in_stock=0))
        with pytest.raises(UnitOfWorkError, match="only SELECTs"):
            reads.execute(text("DELETE FROM products"))
    assert _stocks(uow, pid) == [5]


def test_a_flushed_write_left_without_commit_leaves_nothing(uow: SqlUnitOfWork) -> None:
    [pid] = add_products(uow, ("Oat", 10))
    before = _rows(uow)
    with uow.write() as tx:
        tx.products.get_for_update([pid])[pid].take(4)
        tx.products.add(Product(name="Never committed", price=Decimal("1.00")))
        tx.session.flush()  # the writes reach the database, and still must not stay
    assert _stocks(uow, pid) == [10]
    assert _rows(uow) == before


def test_an_order_failing_on_its_third_line_leaves_nothing_half_written(
    uow: SqlUnitOfWork,
) -> None:
    a, b, c = add_products(uow, ("A", 5), ("B", 5), ("C", 1))
    customer = add_user(uow)
    before = _rows(uow)

    def place_line_by_line() -> None:
        with uow.write() as tx:
            found = tx.products.get_for_update([a, b, c])
            lines = []
            for pid, qty in [(a, 2), (b, 3), (c, 2)]:
                found[pid].take(qty)  # the third line raises, after two lines were taken
                lines.append(line(pid, qty, name=found[pid].name, price=found[pid].price))
                tx.session.flush()
            tx.orders.add(Order(customer_id=customer, created_at=NOW, currency="EUR", lines=lines))
            tx.commit()

    with pytest.raises(OutOfStock) as refused:
        place_line_by_line()
    assert [(s.product_id, s.requested, s.available) for s in refused.value.shortages] == [
        (c, 2, 1)
    ]
    assert _stocks(uow, a, b, c) == [5, 5, 1]
    assert _rows(uow) == before


def test_the_place_order_use_case_changes_nothing_when_one_line_of_three_is_short(
    uow: SqlUnitOfWork,
) -> None:
    a, b, c = add_products(uow, ("A", 5), ("B", 5), ("C", 1))
    customer = add_user(uow)
    before = _rows(uow)
    place = PlaceOrder(uow, _Clock(), "EUR")
    lines = [LineRequest(product_id=pid, quantity=q) for pid, q in [(a, 2), (b, 3), (c, 2)]]
    with pytest.raises(OutOfStock):
        place(PlaceOrderCommand(customer_id=customer, lines=lines, idempotency_key="k-1"))
    assert _stocks(uow, a, b, c) == [5, 5, 1]
    assert _rows(uow) == before
    # The failed attempt did not keep its key: the same key can place the order later.
    with uow.write() as tx:
        assert tx.idempotency.claim(customer, "k-1", NOW)


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "UPDATE products SET quantity_in_stock = quantity_in_stock - 11 WHERE id = :id",
            "quantity_in_stock_not_negative",
        ),
        ("UPDATE products SET price = -1 WHERE id = :id", "price_not_negative"),
    ],
)
def test_the_database_refuses_negative_stock_and_prices_even_if_code_bypasses_the_domain(
    uow: SqlUnitOfWork, statement: str, constraint: str
) -> None:
    [pid] = add_products(uow, ("Oat", 10))

    def bypass_the_domain() -> None:
        with uow.write() as tx:
            tx.session.execute(text(statement), {"id": pid})
            tx.commit()

    with pytest.raises(IntegrityError) as refused:
        bypass_the_domain()
    assert constraint in str(refused.value) or "CHECK constraint failed" in str(refused.value)
    assert _stocks(uow, pid) == [10]


def test_the_database_refuses_an_order_line_of_zero_units(uow: SqlUnitOfWork) -> None:
    [pid] = add_products(uow, ("Oat", 10))
    customer = add_user(uow)
    order = Order(customer_id=customer, created_at=NOW, currency="EUR", lines=[line(pid, 1)])
    with uow.write() as tx:
        tx.orders.add(order)
        tx.commit()

    def zero_the_line() -> None:
        with uow.write() as tx:
            tx.session.execute(
                text("UPDATE order_lines SET quantity = 0 WHERE order_id = :id"), {"id": order.id}
            )
            tx.commit()

    with pytest.raises(IntegrityError):
        zero_the_line()


def test_the_database_refuses_a_second_user_with_the_same_username(uow: SqlUnitOfWork) -> None:
    add_user(uow, "same-name")
    with pytest.raises(IntegrityError):
        add_user(uow, "same-name")


def test_the_migrations_go_down_to_base_and_up_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    try:
        runner.upgrade(engine)
        expected = {table.name for table in metadata.sorted_tables}
        assert set(inspect(engine).get_table_names()) >= expected
        assert runner.current(engine) is not None

        runner.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert runner.current(engine) is None

        runner.upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= expected
        # The re-created schema works end to end, constraints included.
        again = SqlUnitOfWork(read_bind=engine, session_factory=make_session_factory(engine))
        [pid] = add_products(again, ("Oat", 3))
        assert _stocks(again, pid) == [3]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE products SET quantity_in_stock = -1"))
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_tables_the_code_maps(database: Database) -> None:
    def comparable(obj: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
        # Alembic cannot compare indexes on expressions (lower(sku), PostgreSQL's trigram
        # indexes): the migrations own those, and the reads' tests use them.
        return not (kind == "index" and name in EXPRESSION_INDEXES)

    with database.engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        context = MigrationContext.configure(conn, opts={"include_object": comparable})
        drift = compare_metadata(context, metadata)
    assert drift == [], "a migration is missing for these changes to orm.py"


def test_two_migration_runs_at_once_both_succeed_and_leave_one_schema(
    postgres_database: Database,
) -> None:
    """Two replicas starting together: the advisory lock makes the second a no-op."""
    name = f"opply_mig_{uuid.uuid4().hex[:10]}"
    base = make_url(postgres_database.url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(base.set(database=name).render_as_string(hide_password=False))
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def migrate() -> None:
        try:
            barrier.wait()
            runner.upgrade(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=migrate) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert runner.current(engine) == runner.head_revision()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- on PostgreSQL's real engines: reads in autocommit, writes in transactions ------------


@pytest.fixture
def engines(postgres_database: Database, committed_db: Database) -> Iterator[SqlUnitOfWork]:
    """The service's own engines (not the tests' rolled-back transaction): real commits."""
    engine = make_engine(postgres_database.url, pool_size=1, max_overflow=0)
    read_engine = make_read_engine(engine, pool_size=1, max_overflow=0)
    modes: list[tuple[str, bool]] = []

    def _checked_out(name: str) -> Any:
        def record(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            modes.append((name, bool(dbapi_connection.autocommit)))

        return record

    event.listen(engine.pool, "checkout", _checked_out("write"))
    event.listen(read_engine.pool, "checkout", _checked_out("read"))
    uow = SqlUnitOfWork(read_bind=read_engine, session_factory=make_session_factory(engine))
    uow.modes = modes  # type: ignore[attr-defined]
    try:
        yield uow
    finally:
        read_engine.dispose()
        engine.dispose()


def test_on_postgresql_reads_run_in_autocommit_and_writes_never_do(engines: SqlUnitOfWork) -> None:
    [pid] = add_products(engines, ("Oat", 5))
    assert _stocks(engines, pid) == [5]
    with engines.write() as tx:
        tx.products.get_for_update([pid])[pid].take(1)
        tx.commit()
    assert _stocks(engines, pid) == [4]
    modes: list[tuple[str, bool]] = engines.modes  # type: ignore[attr-defined]
    assert set(modes) == {("write", False), ("read", True)}


def test_on_postgresql_a_write_refused_in_a_read_leaves_nothing(engines: SqlUnitOfWork) -> None:
    """Autocommit keeps every statement at once: the read unit of work must never run one
    that writes, even by mistake."""
    [pid] = add_products(engines, ("Oat", 5))
    with engines.read() as reads, pytest.raises(UnitOfWorkError):
        reads.execute(update(products).where(products.c.id == pid).values(quantity_in_stock=0))
    assert _stocks(engines, pid) == [5]


def test_on_postgresql_a_flushed_write_left_without_commit_leaves_nothing(
    engines: SqlUnitOfWork,
) -> None:
    [pid] = add_products(engines, ("Oat", 5))
    with engines.write() as tx:
        tx.products.get_for_update([pid])[pid].take(5)
        tx.session.flush()
        tx.session.execute(text("UPDATE products SET name = 'changed' WHERE id = :id"), {"id": pid})
    with engines.read() as reads:
        view = reads.product(pid)
    assert view is not None
    assert (view.name, view.quantity_in_stock) == ("Oat", 5)


@pytest.fixture
def blank_database(database: Database, tmp_path: Path) -> Iterator[Any]:
    """An empty database of the same kind as ``database``, dropped afterwards."""
    if database.engine.dialect.name == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'blank.sqlite3'}")
        yield engine
        engine.dispose()
        return
    name = f"opply_blank_{uuid.uuid4().hex[:10]}"
    base = make_url(database.url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(base.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_v1_data_gets_skus_and_keeps_its_order_totals_through_the_v1_1_migration(
    blank_database: Any,
) -> None:
    engine = blank_database
    runner.upgrade(engine, "0002")
    cents = engine.dialect.name == "sqlite"  # money is integer cents there

    def amount(text_value: str) -> Any:
        return int(Decimal(text_value) * 100) if cents else Decimal(text_value)

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO products (id, name, price, quantity_in_stock) VALUES (:i, :n, :p, 5)"
            ),
            [
                {"i": 7, "n": "Oat flour 25kg", "p": amount("12.50")},
                {"i": 1234567, "n": "Big id", "p": amount("0.99")},
            ],
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, is_staff, is_active) "
                "VALUES (1, 'ann', 'h', false, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, customer_id, status, currency, created_at) "
                "VALUES (1, 1, 'placed', 'EUR', :at)"
            ),
            {"at": NOW.replace(tzinfo=None) if cents else NOW},
        )
        conn.execute(
            text(
                "INSERT INTO order_lines (order_id, product_id, product_name, unit_price, quantity)"
                " VALUES (1, 7, 'Oat flour 25kg', :p, 3), (1, 1234567, 'Big id', :q, 1)"
            ),
            {"p": amount("12.50"), "q": amount("0.99")},
        )
    runner.upgrade(engine)
    uow = SqlUnitOfWork(read_bind=engine, session_factory=make_session_factory(engine))
    with uow.read() as reads:
        oat, big = reads.product(7), reads.product(1234567)
        order = reads.order(1)
        catalogue = reads.product_page(ProductFilter(), PageRequest())
    assert oat is not None
    assert big is not None
    assert (oat.sku, oat.unit, oat.description, oat.vat_rate) == ("P-000007", "unit", "", 0)
    assert big.sku == "P-1234567"  # padded to six digits, never cut
    assert catalogue.total == 2  # the catalogue's size is still kept (SQLite's triggers too)
    assert order is not None
    assert [(line.sku, line.unit, line.vat_rate) for line in order.lines] == [
        ("P-000007", "unit", Decimal("0.00")),
        ("P-1234567", "unit", Decimal("0.00")),
    ]
    assert (order.subtotal, order.vat_total, order.total) == (
        Decimal("38.49"),
        Decimal("0.00"),
        Decimal("38.49"),
    )
    # And a product added after the migration is counted and gets its SKU.
    added = CreateProduct(uow)(NewProduct(name="New", price=Decimal("1.00")))
    assert added.sku == f"P-{added.id:06d}"
    with uow.read() as reads:
        assert reads.product_page(ProductFilter(), PageRequest()).total == 3
    runner.downgrade(engine, "0002")
    with engine.connect() as conn:
        lines = conn.execute(text("SELECT quantity FROM order_lines ORDER BY product_id")).all()
    assert [row.quantity for row in lines] == [3, 1]


def test_v1_1_data_orders_as_before_through_the_v1_2_migration(blank_database: Any) -> None:
    """Products from before sell by the unit, orders from before go nowhere and have no
    invoice; and what an instance of the previous release writes meanwhile (no new column
    named) gets the same defaults, so a rolling deploy keeps working."""
    engine = blank_database
    runner.upgrade(engine, "0003")

    def old_release_writes(conn: Any, product_id: int, order_id: int) -> None:
        conn.execute(
            text(
                "INSERT INTO products (id, name, price, quantity_in_stock, sku) "
                "VALUES (:i, 'Oat', 250, 5, :s)"
            ),
            {"i": product_id, "s": f"P-{product_id:06d}"},
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, customer_id, status, currency, created_at) "
                "VALUES (:o, 1, 'placed', 'EUR', :at)"
            ),
            {
                "o": order_id,
                "at": NOW.replace(tzinfo=None) if engine.dialect.name == "sqlite" else NOW,
            },
        )

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, is_staff, is_active) "
                "VALUES (1, 'ann', 'h', false, true)"
            )
        )
        old_release_writes(conn, 7, 1)
    runner.upgrade(engine)
    with engine.begin() as conn:
        old_release_writes(conn, 8, 2)
    uow = SqlUnitOfWork(read_bind=engine, session_factory=make_session_factory(engine))
    with uow.read() as reads:
        products = [reads.product(7), reads.product(8)]
        orders_ = [reads.order(1), reads.order(2)]
        assert reads.addresses(1) == []
    assert [(p.min_order_quantity, p.case_size) for p in products if p] == [(1, 1), (1, 1)]
    assert [(o.delivery_address, o.invoice_number) for o in orders_ if o] == [(None, None)] * 2


def test_v1_2_orders_get_their_stored_totals_through_migration_0008_in_batches(
    blank_database: Any,
) -> None:
    """Orders from before 0008 are filled from their lines (each line's VAT rounded half up on
    its own, as the domain rounds it), in batches of ids; an order the previous release inserts
    afterwards has none, and the sales still add it up from its lines."""
    engine = blank_database
    sqlite = engine.dialect.name == "sqlite"
    runner.upgrade(engine, "0007")

    def hundredths(value: str) -> Any:  # money and rates are integer hundredths on SQLite
        return int(Decimal(value) * 100) if sqlite else Decimal(value)

    def old_release_writes(conn: Any, order_id: int) -> None:
        conn.execute(
            text(
                "INSERT INTO orders (id, customer_id, status, currency, created_at) "
                "VALUES (:o, 1, 'placed', 'EUR', :at)"
            ),
            {"o": order_id, "at": NOW.replace(tzinfo=None) if sqlite else NOW},
        )
        conn.execute(
            text(
                "INSERT INTO order_lines (order_id, product_id, sku, product_name, unit, "
                "unit_price, vat_rate, quantity) VALUES "
                "(:o, 7, 'P-000007', 'Oat', 'unit', :p, :r, 3), "
                "(:o, 8, 'P-000008', 'Rye', 'unit', :q, :s, 1)"
            ),
            {
                "o": order_id,
                "p": hundredths("12.50"),
                "r": hundredths("7.00"),  # 37.50 x 7% = 2.625 -> 2.63
                "q": hundredths("1.25"),
                "s": hundredths("10.00"),  # 0.125 -> 0.13
            },
        )

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, is_staff, is_active) "
                "VALUES (1, 'ann', 'h', false, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO products (id, name, price, quantity_in_stock, sku) "
                "VALUES (7, 'Oat', :p, 5, 'P-000007'), (8, 'Rye', :p, 5, 'P-000008')"
            ),
            {"p": hundredths("1.00")},
        )
        for order_id in (1, 2, 12_001):  # ids in three batches of 5,000
            old_release_writes(conn, order_id)
    runner.upgrade(engine)
    with engine.begin() as conn:
        old_release_writes(conn, 12_002)  # the previous release, still running

    with engine.connect() as conn:
        stored = conn.execute(
            select(orders.c.id, orders.c.subtotal, orders.c.vat_total).order_by(orders.c.id)
        ).all()
    filled = (Decimal("38.75"), Decimal("2.76"))
    assert [tuple(row) for row in stored] == [
        (1, *filled),
        (2, *filled),
        (12_001, *filled),
        (12_002, None, None),
    ]
    uow = SqlUnitOfWork(read_bind=engine, session_factory=make_session_factory(engine))
    with uow.read() as reads:
        [sold] = reads.sales([NOW - timedelta(hours=1), NOW + timedelta(hours=1)])
        to_ship = reads.orders_to_ship(limit=10)
    assert (sold.orders, sold.net, sold.vat) == (4, Decimal("155.00"), Decimal("11.04"))
    assert {(o.subtotal, o.vat_total) for o in to_ship.orders} == {filled}
    runner.downgrade(engine, "0007")
    with engine.connect() as conn:
        assert "subtotal" not in {c["name"] for c in inspect(conn).get_columns("orders")}
