"""The SQL unit of work on SQLite and PostgreSQL: a commit persists, anything else leaves nothing
behind; the database's own constraints back the domain; the migrations go down and up cleanly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from opply.adapters.database import make_engine, make_session_factory
from opply.adapters.migrations import runner
from opply.adapters.orm import metadata, order_lines, orders, products
from opply.adapters.sqlalchemy_uow import SqlAlchemyUnitOfWork
from opply.application.dto import PlaceOrderCommand
from opply.application.orders import PlaceOrder
from opply.domain.errors import OutOfStock
from opply.domain.model import LineRequest, Order, OrderLine, Product, User
from tests.integration.conftest import Database

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
NOW = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


class Boom(Exception):
    pass


def _product(uow_factory: UowFactory, stock: int = 10, name: str = "Oat flour 25kg") -> int:
    with uow_factory().for_write() as uow:
        product = Product(name, Decimal("12.50"), stock)
        uow.products.add(product)
        uow.commit()
    assert product.id is not None
    return product.id


def _customer(uow_factory: UowFactory) -> int:
    with uow_factory().for_write() as uow:
        user = User(f"buyer-{uuid.uuid4().hex}", "hash")
        uow.users.add(user)
        uow.commit()
    assert user.id is not None
    return user.id


def _stocks(uow_factory: UowFactory, *product_ids: int) -> list[int | None]:
    with uow_factory() as uow:
        found = [uow.products.get(pid) for pid in product_ids]
        return [None if p is None else p.quantity_in_stock for p in found]


def _rows(uow_factory: UowFactory) -> dict[str, int]:
    with uow_factory() as uow:
        return {
            table.name: uow.session.scalar(select(func.count()).select_from(table)) or 0
            for table in (products, orders, order_lines)
        }


def test_a_committed_change_is_seen_by_the_next_unit_of_work(uow_factory: UowFactory) -> None:
    pid = _product(uow_factory, stock=10)
    with uow_factory().for_write() as uow:
        uow.products.get_for_update([pid])[pid].take(4)
        uow.commit()
    assert _stocks(uow_factory, pid) == [6]


def test_leaving_without_commit_rolls_everything_back(uow_factory: UowFactory) -> None:
    pid = _product(uow_factory, stock=10)
    before = _rows(uow_factory)
    with uow_factory().for_write() as uow:
        uow.products.get_for_update([pid])[pid].take(4)
        uow.products.add(Product("Never committed", Decimal("1.00"), 1))
        uow.session.flush()  # the writes reach the database, and still must not stay
    assert _stocks(uow_factory, pid) == [10]
    assert _rows(uow_factory) == before


def test_an_exception_inside_rolls_back_even_after_a_flush(uow_factory: UowFactory) -> None:
    pid = _product(uow_factory, stock=10)
    before = _rows(uow_factory)

    def write_then_fail() -> None:
        with uow_factory().for_write() as uow:
            uow.products.get_for_update([pid])[pid].take(4)
            uow.products.add(Product("Never committed", Decimal("1.00"), 1))
            uow.session.flush()
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()
    assert _stocks(uow_factory, pid) == [10]
    assert _rows(uow_factory) == before


def test_an_order_failing_on_its_third_line_leaves_nothing_half_written(
    uow_factory: UowFactory,
) -> None:
    a, b, c = (_product(uow_factory, stock=s, name=n) for n, s in [("A", 5), ("B", 5), ("C", 1)])
    customer = _customer(uow_factory)
    before = _rows(uow_factory)

    def place_line_by_line() -> None:
        with uow_factory().for_write() as uow:
            found = uow.products.get_for_update([a, b, c])
            lines = []
            for pid, qty in [(a, 2), (b, 3), (c, 2)]:
                found[pid].take(qty)  # the third line raises, after two lines were taken
                lines.append(OrderLine(pid, found[pid].name, found[pid].price, qty))
                uow.session.flush()
            uow.orders.add(Order(customer, NOW, "EUR", lines=lines))
            uow.commit()

    with pytest.raises(OutOfStock) as refused:
        place_line_by_line()
    assert [(s.product_id, s.requested, s.available) for s in refused.value.shortages] == [
        (c, 2, 1)
    ]
    assert _stocks(uow_factory, a, b, c) == [5, 5, 1]
    assert _rows(uow_factory) == before


def test_the_place_order_use_case_changes_nothing_when_one_line_of_three_is_short(
    uow_factory: UowFactory,
) -> None:
    a, b, c = (_product(uow_factory, stock=s, name=n) for n, s in [("A", 5), ("B", 5), ("C", 1)])
    customer = _customer(uow_factory)
    before = _rows(uow_factory)
    place = PlaceOrder(uow_factory(), _Clock(), "EUR")
    lines = [LineRequest(a, 2), LineRequest(b, 3), LineRequest(c, 2)]
    with pytest.raises(OutOfStock):
        place(PlaceOrderCommand(customer, lines, idempotency_key="k-1"))
    assert _stocks(uow_factory, a, b, c) == [5, 5, 1]
    assert _rows(uow_factory) == before
    # The failed attempt did not keep its key: the same key can place the order later.
    with uow_factory().for_write() as uow:
        assert uow.idempotency.claim(customer, "k-1", NOW)


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
    uow_factory: UowFactory, statement: str, constraint: str
) -> None:
    pid = _product(uow_factory, stock=10)

    def bypass_the_domain() -> None:
        with uow_factory().for_write() as uow:
            uow.session.execute(text(statement), {"id": pid})
            uow.commit()

    with pytest.raises(IntegrityError) as refused:
        bypass_the_domain()
    assert constraint in str(refused.value) or "CHECK constraint failed" in str(refused.value)
    assert _stocks(uow_factory, pid) == [10]


def test_the_database_refuses_an_order_line_of_zero_units(uow_factory: UowFactory) -> None:
    pid = _product(uow_factory, stock=10)
    customer = _customer(uow_factory)
    with uow_factory().for_write() as uow:
        order = Order(customer, NOW, "EUR", lines=[OrderLine(pid, "A", Decimal("1.00"), 1)])
        uow.orders.add(order)
        uow.commit()

    def zero_the_line() -> None:
        with uow_factory().for_write() as uow:
            uow.session.execute(
                text("UPDATE order_lines SET quantity = 0 WHERE order_id = :id"), {"id": order.id}
            )
            uow.commit()

    with pytest.raises(IntegrityError):
        zero_the_line()


def test_the_database_refuses_a_second_user_with_the_same_username(
    uow_factory: UowFactory,
) -> None:
    with uow_factory().for_write() as uow:
        uow.users.add(User("same-name", "hash"))
        uow.commit()

    def add_again() -> None:
        with uow_factory().for_write() as uow:
            uow.users.add(User("same-name", "other"))
            uow.commit()

    with pytest.raises(IntegrityError):
        add_again()


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
        uow_factory = lambda: SqlAlchemyUnitOfWork(make_session_factory(engine))  # noqa: E731
        pid = _product(uow_factory, stock=3)
        assert _stocks(uow_factory, pid) == [3]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE products SET quantity_in_stock = -1"))
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_tables_the_code_maps(database: Database) -> None:
    with database.engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), metadata)
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


def test_a_read_gives_its_connection_back_to_the_pool_out_of_autocommit(
    postgres_database: Database,
) -> None:
    """Reads run in autocommit on PostgreSQL; a connection must never return to the pool so,
    or the next order's SELECT ... FOR UPDATE would hold its locks for one statement only."""
    engine = make_engine(postgres_database.url, pool_size=1, max_overflow=0)
    states_at_checkin: list[bool] = []

    def _checked_in(dbapi_connection: Any, _record: Any) -> None:
        states_at_checkin.append(bool(dbapi_connection.autocommit))

    # insert=True: before the engine's own safety net, to see what the unit of work left.
    event.listen(engine.pool, "checkin", _checked_in, insert=True)
    try:
        uow = SqlAlchemyUnitOfWork(make_session_factory(engine))
        with uow:
            uow.users.get_by_username("nobody")

        def failing_read() -> None:
            with uow:
                uow.users.get_by_username("nobody")
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            failing_read()
        assert states_at_checkin == [False, False]
    finally:
        engine.dispose()
