"""Real databases for the integration tests.

SQLite always runs. PostgreSQL runs when TEST_DATABASE_URL is set: the suite creates a fresh
database on that server, migrates it with Alembic, and drops it at the end. Each test runs inside
an outer transaction that is rolled back (the units of work commit to a savepoint), except tests
that need real commits (``committed_db``), which empty the tables afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.database import make_engine, make_read_engine, make_session_factory
from opply.adapters.memory import InMemoryStore, InMemoryUnitOfWork
from opply.adapters.migrations import runner
from opply.adapters.orm import metadata, start_mappers, webhook_fanout
from opply.adapters.passwords import Argon2PasswordHasher
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.adapters.sql_webhooks import SqlWebhookStore
from opply.application.unit_of_work import UnitOfWork
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.config import Settings, database_url
from opply.entrypoints.container import Container, build_container

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: set TEST_DATABASE_URL "
    "(e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/test) to run them"
)


def postgres_test_url() -> str | None:
    """TEST_DATABASE_URL in any spelling DATABASE_URL accepts (postgres://, postgresql://, ...),
    as the app would read it; a wrong one stops the run with the app's own message."""
    raw = os.environ.get("TEST_DATABASE_URL")
    return database_url(raw, "TEST_DATABASE_URL") if raw else None


def pytest_report_header() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return "PostgreSQL integration tests: ON (TEST_DATABASE_URL is set)"
    return PG_SKIP_REASON


@dataclass(kw_only=True)
class Database:
    """One migrated database for the whole run."""

    name: str
    url: str
    engine: Engine
    read_engine: Engine

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("db") / "opply-test.sqlite3"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    runner.upgrade(engine)
    yield Database(name="sqlite", url=url, engine=engine, read_engine=make_read_engine(engine))
    engine.dispose()


@contextmanager
def empty_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on TEST_DATABASE_URL's server (skipped without it), dropped
    afterwards whatever is still connected to it; yields its URL."""
    base = postgres_test_url()
    if not base:
        pytest.skip(PG_SKIP_REASON)
    base_url = make_url(base)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    with empty_postgres_database("opply_test") as url:
        engine = make_engine(url, pool_size=20, max_overflow=20)
        read_engine = make_read_engine(engine, pool_size=20, max_overflow=20)
        runner.upgrade(engine)
        yield Database(name="postgresql", url=url, engine=engine, read_engine=read_engine)
        read_engine.dispose()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    marker = request.param
    if marker == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("postgres_database")
    return request.getfixturevalue("sqlite_database")


@contextmanager
def rolled_back(database: Database) -> Iterator[Connection]:
    """An outer transaction around the whole test, rolled back at the end."""
    conn = database.engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


def savepoint_sessions(connection: Connection) -> sessionmaker[Session]:
    """Sessions inside ``connection``'s transaction: a commit releases a savepoint."""
    start_mappers()
    return sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
def connection(database: Database) -> Iterator[Connection]:
    with rolled_back(database) as conn:
        yield conn


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return savepoint_sessions(connection)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def contract_uow(request: pytest.FixtureRequest) -> Iterator[UnitOfWork]:
    """For contract tests: the in-memory unit of work (the unit tests' double), and the SQL
    one on SQLite and on PostgreSQL, each inside a transaction rolled back after the test."""
    if request.param == "memory":
        yield InMemoryUnitOfWork(InMemoryStore())
        return
    name = {"sqlite": "sqlite_database", "postgresql": "postgres_database"}[request.param]
    database: Database = request.getfixturevalue(name)
    with rolled_back(database) as conn:
        yield SqlUnitOfWork(read_bind=conn, session_factory=savepoint_sessions(conn))


@pytest.fixture
def uow(connection: Connection, session_factory: sessionmaker[Session]) -> SqlUnitOfWork:
    """Units of work inside the test's transaction: reads on its connection, writes in
    savepoints of it."""
    return SqlUnitOfWork(read_bind=connection, session_factory=session_factory)


@pytest.fixture
def committed_db(database: Database) -> Iterator[Database]:
    """For tests that need real commits (concurrency): empties every table afterwards."""
    yield database
    empty_every_table(database)


def empty_every_table(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        # The one row the migration makes and the webhook fan-out needs: back at the start.
        conn.execute(webhook_fanout.insert().values(id=1, tx_id=0, event_id=0))


def make_settings(database: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url,
        "secret_key": TEST_SECRET,
        "env": "test",
        "access_token_ttl": timedelta(minutes=15),
        "refresh_token_ttl": timedelta(days=7),
    }
    values.update(overrides)
    return Settings(**values)


class FastHasher(Argon2PasswordHasher):
    """argon2id with test-sized cost: same code path, a fraction of the time."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)


def build_test_container(database: Database, uow: SqlUnitOfWork | None = None) -> Container:
    """The app's container on the test database: on ``uow`` (the test's transaction) when
    given, else on the database's own engines (real commits)."""
    container = build_container(make_settings(database))
    container.engine.override(providers.Object(database.engine))
    container.read_engine.override(providers.Object(database.read_engine))
    container.session_factory.override(providers.Object(make_session_factory(database.engine)))
    if uow is not None:
        container.uow.override(providers.Object(uow))
    container.password_hasher.override(providers.Singleton(FastHasher))
    return container


@pytest.fixture
def container(database: Database, uow: SqlUnitOfWork, connection: Connection) -> Container:
    container = build_test_container(database, uow)
    # The webhook store works on its own transactions: here, savepoints of the test's one.
    container.webhook_store.override(providers.Object(SqlWebhookStore(connection)))
    return container


@pytest.fixture
def app(database: Database, container: Container) -> Iterator[Flask]:
    app = create_app(make_settings(database), container=container)
    yield app
    unwire_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementCounter]:
    """Every SQL statement sent to the database in the block (an executemany counts once)."""
    counter = StatementCounter()

    def _before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", _before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", _before)
