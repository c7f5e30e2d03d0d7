"""Run the Alembic migrations from code (the CLI, the tests, the container's start command)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Any constant: the key of the advisory lock that serialises concurrent migration runs.
MIGRATION_LOCK_KEY = 0x0991_7001
LOCK_RETRY_SECONDS = 0.5


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection ready for Alembic, which runs each migration in a transaction of its own
    (a migration may step out of it for PostgreSQL's CREATE INDEX CONCURRENTLY).

    On PostgreSQL, two replicas starting at once both run ``opply db upgrade``: the second
    waits for the first's session advisory lock, then finds the schema at head and does
    nothing. It waits by trying the lock every half second, outside any transaction: a session
    blocked inside a statement holds a snapshot, which a concurrent index build would wait
    for (a deadlock).

    On SQLite, altering a table copies it into a new one and drops the old, which its foreign
    keys would refuse: they are switched off for the migration (SQLite takes that switch only
    outside a transaction), checked once it is done, and switched back on before the
    connection returns to the pool.
    """
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            lock = f"pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
            while not connection.exec_driver_sql(f"SELECT {lock}").scalar_one():
                connection.commit()
                time.sleep(LOCK_RETRY_SECONDS)
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                connection.commit()
        return
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():  # every migration in this one transaction
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys = ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with _migrating(engine) as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with _migrating(engine) as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
