"""Real databases for the integration tests.

SQLite always runs. PostgreSQL runs when TEST_DATABASE_URL is set: the suite creates a fresh
database on that server, migrates it with Alembic, and drops it at the end. Each test runs inside
an outer transaction that is rolled back (the units of work commit to a savepoint), except tests
that need real commits (``committed_db``), which empty the tables afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
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

from opply.adapters.database import make_engine, make_session_factory
from opply.adapters.migrations import runner
from opply.adapters.orm import metadata, start_mappers
from opply.adapters.passwords import Argon2PasswordHasher
from opply.adapters.sqlalchemy_uow import SqlAlchemyUnitOfWork
from opply.entrypoints.app import create_app
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container, build_container

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: set TEST_DATABASE_URL "
    "(e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/test) to run them"
)


def pytest_report_header() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return "PostgreSQL integration tests: ON (TEST_DATABASE_URL is set)"
    return PG_SKIP_REASON


@dataclass
class Database:
    """One migrated database for the whole run."""

    name: str
    url: str
    engine: Engine

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("db") / "opply-test.sqlite3"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    runner.upgrade(engine)
    yield Database("sqlite", url, engine)
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip(PG_SKIP_REASON)
    base_url = make_url(base)
    name = f"opply_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=20, max_overflow=20)
    runner.upgrade(engine)
    yield Database("postgresql", url, engine)
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    marker = request.param
    if marker == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("postgres_database")
    return request.getfixturevalue("sqlite_database")


@pytest.fixture
def connection(database: Database) -> Iterator[Connection]:
    """An outer transaction around the whole test, rolled back at the end."""
    conn = database.engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    start_mappers()
    return sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
def uow_factory(session_factory: sessionmaker[Session]) -> Callable[[], SqlAlchemyUnitOfWork]:
    return lambda: SqlAlchemyUnitOfWork(session_factory)


@pytest.fixture
def committed_db(database: Database) -> Iterator[Database]:
    """For tests that need real commits (concurrency): empties every table afterwards."""
    yield database
    with database.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


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


def build_test_container(database: Database, session_factory: Any | None = None) -> Container:
    container = build_container(make_settings(database))
    container.engine.override(providers.Object(database.engine))
    if session_factory is not None:
        container.session_factory.override(providers.Object(session_factory))
    else:
        container.session_factory.override(providers.Object(make_session_factory(database.engine)))
    container.password_hasher.override(providers.Singleton(FastHasher))
    return container


@pytest.fixture
def container(database: Database, session_factory: sessionmaker[Session]) -> Container:
    return build_test_container(database, session_factory)


@pytest.fixture
def app(database: Database, container: Container) -> Flask:
    return create_app(make_settings(database), container=container)


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
