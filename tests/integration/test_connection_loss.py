"""A lost or unreachable database is a 503 the client may retry, never a 500 and never a
half-written order.

On PostgreSQL, with real connections killed by the server (``pg_terminate_backend``, what a
restart or a failover does to them): a connection that died idle in the pool is never handed
out; a read whose connection dies mid-way runs once more on a new one; a write whose connection
dies before COMMIT keeps nothing; one lost while committing says so, and the order's
Idempotency-Key makes the client's retry safe whichever way the commit went. The whole service
under repeated faults, with real gunicorn workers, is ``test_database_faults.py``.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, event, func, text
from sqlalchemy import select as sql_select

from opply.adapters.database import make_engine, make_read_engine, make_session_factory
from opply.adapters.orm import idempotency_keys, orders, products
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.application.dto import NewProduct, PageRequest, ProductFilter
from opply.application.products import CreateProduct
from opply.application.unit_of_work import StoreUnavailable
from opply.domain.model import Product
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container, make_settings
from tests.integration.test_admin import admin_login

UNREACHABLE = "postgresql+psycopg2://postgres@127.0.0.1:9/opply"  # the discard port: refused

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh(postgres_database: Database) -> Iterator[Database]:
    """The test database on engines of its own (small pools the test can reason about)."""
    engine = make_engine(postgres_database.url, pool_size=2, max_overflow=0)
    read_engine = make_read_engine(engine, pool_size=2, max_overflow=0)
    yield Database(
        name="postgresql", url=postgres_database.url, engine=engine, read_engine=read_engine
    )
    read_engine.dispose()
    engine.dispose()
    with postgres_database.engine.begin() as conn:
        conn.execute(idempotency_keys.delete())
        conn.execute(text("DELETE FROM order_lines"))
        conn.execute(orders.delete())
        conn.execute(products.delete())
        conn.execute(text("DELETE FROM refresh_tokens"))
        conn.execute(text("DELETE FROM users"))


@pytest.fixture
def admin(postgres_database: Database) -> Iterator[Connection]:
    engine = create_engine(postgres_database.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def terminate(admin: Connection, pid: int) -> None:
    assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def wait_until_closed(dbapi_connection: Any) -> None:
    """Until the server's goodbye has reached the socket of an idle connection."""
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    assert poller.poll(5000), "the server did not close the connection"


class Failures:
    """Statements that failed on ``engine`` (SQLAlchemy's handle_error event)."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[BaseException] = []
        event.listen(engine, "handle_error", self._record)
        self._engine = engine

    def _record(self, context: Any) -> None:
        self.seen.append(context.original_exception)

    def close(self) -> None:
        event.remove(self._engine, "handle_error", self._record)


def backend_pid(reads: Any) -> int:
    pid: int = reads.execute(sql_select(func.pg_backend_pid())).scalar_one()
    return pid


def test_a_connection_the_server_closed_while_idle_is_never_handed_out(
    fresh: Database, admin: Connection
) -> None:
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))
    with uow.read() as reads:
        first = backend_pid(reads)
        dbapi_connection = reads._connection.connection.dbapi_connection  # type: ignore[union-attr]
    terminate(admin, first)
    wait_until_closed(dbapi_connection)
    failures = Failures(fresh.read_engine)
    try:
        with uow.read() as reads:
            second = backend_pid(reads)
            reads.product_page(ProductFilter(), PageRequest(page=1, page_size=10))
    finally:
        failures.close()
    assert second != first
    assert failures.seen == []  # found at checkout, before any statement was sent on it


def test_a_read_whose_connection_dies_midway_runs_once_more_on_a_new_one(
    fresh: Database, admin: Connection
) -> None:
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))
    failures = Failures(fresh.read_engine)
    try:
        with uow.read() as reads:
            first = backend_pid(reads)
            terminate(admin, first)  # while this unit of work holds the connection
            page = reads.product_page(ProductFilter(), PageRequest(page=1, page_size=10))
            second = backend_pid(reads)
    finally:
        failures.close()
    assert page.total == 0
    assert second != first
    assert len(failures.seen) == 1


def test_a_write_whose_connection_dies_before_commit_keeps_nothing(
    fresh: Database, admin: Connection
) -> None:
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))

    def add_then_lose_the_connection() -> None:
        with uow.write() as w:
            w.products.add(Product(name="Lost", price=Decimal("1.00"), quantity_in_stock=3))
            terminate(admin, w.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            w.products.get_for_update([1])  # the next statement meets the closed connection
            w.commit()

    with pytest.raises(StoreUnavailable) as lost:
        add_then_lose_the_connection()
    assert not lost.value.outcome_unknown
    with fresh.engine.connect() as conn:
        assert conn.execute(sql_select(func.count()).select_from(products)).scalar_one() == 0


def test_a_write_lost_while_committing_says_its_outcome_is_unknown(
    fresh: Database, admin: Connection
) -> None:
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))

    def kill_before_commit(conn: Connection) -> None:
        terminate(admin, conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    event.listen(fresh.engine, "commit", kill_before_commit)
    try:
        with pytest.raises(StoreUnavailable) as lost:
            CreateProduct(uow)(NewProduct(name="Maybe", price=Decimal("1.00"), quantity_in_stock=3))
    finally:
        event.remove(fresh.engine, "commit", kill_before_commit)
    assert lost.value.outcome_unknown


def test_an_unreachable_database_is_store_unavailable_for_reads_and_writes() -> None:
    engine = make_engine(UNREACHABLE)
    uow = SqlUnitOfWork(make_read_engine(engine), make_session_factory(engine))
    with pytest.raises(StoreUnavailable), uow.read() as reads:
        reads.product(1)
    with pytest.raises(StoreUnavailable), uow.write():
        pass
    engine.dispose()


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def dead_app(postgres_database: Database) -> Iterator[Flask]:
    engine = make_engine(UNREACHABLE)
    dead = Database(
        name="postgresql", url=UNREACHABLE, engine=engine, read_engine=make_read_engine(engine)
    )
    app = create_app(make_settings(dead), container=build_test_container(dead))
    yield app
    unwire_app(app)
    engine.dispose()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/products/", None),
        ("GET", "/api/v1/products/1/", None),
        ("POST", "/api/token/", {"username": "ana", "password": "a-long-password"}),
    ],
)
def test_an_unreachable_database_is_a_503_with_retry_after(
    dead_app: Flask, method: str, path: str, body: Any
) -> None:
    response = dead_app.test_client().open(path, method=method, json=body)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_the_admin_says_503_too(dead_app: Flask) -> None:
    response = admin_login(dead_app.test_client(), "staff", "a-long-password")
    assert response.status_code == 503
    assert "Database unavailable" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers


@pytest.fixture
def live(fresh: Database) -> Iterator[tuple[FlaskClient, Container]]:
    container = build_test_container(fresh)
    app = create_app(make_settings(fresh), container=container)
    yield app.test_client(), container
    unwire_app(app)


def _lose_the_next_commit(engine: Engine, admin: Connection, *, kept: bool) -> Any:
    """Make the next COMMIT on ``engine`` meet a connection the server has just terminated,
    after (``kept``) or without the transaction having been committed: either way the client
    sees its connection lost while committing, and cannot tell which happened."""
    state = {"armed": True}

    def on_commit(conn: Connection) -> None:
        if not state["armed"]:
            return
        state["armed"] = False
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        if kept:
            cursor.execute("COMMIT")  # behind the driver's back: it still sends its own
        cursor.close()
        terminate(admin, pid)
        wait_until_closed(dbapi_connection)

    event.listen(engine, "commit", on_commit)
    return on_commit


@pytest.mark.parametrize("kept", [True, False], ids=["commit-kept", "commit-lost"])
def test_a_client_retrying_with_its_key_gets_exactly_one_order_whatever_the_commit_did(
    live: tuple[FlaskClient, Container], fresh: Database, admin: Connection, kept: bool
) -> None:
    client, container = live
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))
    product = f.product(uow, stock=10)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "flaky-1"}
    body = f.order_body((product.id, 3))

    listener = _lose_the_next_commit(fresh.engine, admin, kept=kept)
    try:
        first = client.post("/api/v1/orders/", json=body, headers=headers)
    finally:
        event.remove(fresh.engine, "commit", listener)
    assert first.status_code == 503
    assert first.get_json()["code"] == "database_unavailable"
    assert "Retry-After" in first.headers

    retry = client.post("/api/v1/orders/", json=body, headers=headers)
    assert retry.status_code == 201
    assert (retry.headers.get("Idempotent-Replayed") == "true") is kept
    again = client.post("/api/v1/orders/", json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == retry.get_json()["id"]

    with fresh.engine.connect() as conn:
        assert conn.execute(sql_select(func.count()).select_from(orders)).scalar_one() == 1
        stock = conn.execute(
            sql_select(products.c.quantity_in_stock).where(products.c.id == product.id)
        ).scalar_one()
    assert stock == 7


def test_an_order_whose_connection_dies_before_commit_is_placed_on_the_second_try(
    live: tuple[FlaskClient, Container], fresh: Database, admin: Connection
) -> None:
    """The client never sees the loss: the service runs the order once more, from scratch."""
    client, container = live
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))
    product = f.product(uow, stock=10)
    headers = f.bearer(client, f.user(container).username)
    state = {"armed": True, "kills": 0}

    def kill_on_the_stock_update(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if state["armed"] and statement.lstrip().upper().startswith("UPDATE PRODUCTS"):
            state["armed"] = False
            state["kills"] += 1
            dbapi_connection = conn.connection.dbapi_connection
            assert dbapi_connection is not None
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            terminate(admin, cursor.fetchone()[0])
            cursor.close()

    event.listen(fresh.engine, "before_cursor_execute", kill_on_the_stock_update)
    try:
        placed = client.post("/api/v1/orders/", json=f.order_body((product.id, 3)), headers=headers)
    finally:
        event.remove(fresh.engine, "before_cursor_execute", kill_on_the_stock_update)
    assert state["kills"] == 1
    assert placed.status_code == 201, placed.get_json()
    with fresh.engine.connect() as conn:
        assert conn.execute(sql_select(func.count()).select_from(orders)).scalar_one() == 1
        stock = conn.execute(
            sql_select(products.c.quantity_in_stock).where(products.c.id == product.id)
        ).scalar_one()
    assert stock == 7


def test_leaving_a_write_whose_connection_died_unnoticed_rolls_back_quietly(
    fresh: Database, admin: Connection
) -> None:
    """The server ended the transaction with the connection: the rollback on the way out has
    nothing to undo, and must not turn into an error of its own (it was a 500)."""
    uow = SqlUnitOfWork(fresh.read_engine, make_session_factory(fresh.engine))
    with uow.write() as w:
        pid = w.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        terminate(admin, pid)
        dbapi_connection = w.session.connection().connection.dbapi_connection
        wait_until_closed(dbapi_connection)
    with uow.read() as reads:  # and the pool hands out a live connection afterwards
        assert reads.product(1) is None
