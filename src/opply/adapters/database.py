"""Engines and session factories, built on demand (nothing at import time).

Two engines share one database: the **write** engine runs transactions (the ORM session of a
write unit of work), the **read** engine runs the read unit of work's queries. On PostgreSQL the
read engine's connections stay in autocommit for their whole life: a query is one round trip,
with no BEGIN or ROLLBACK around it (at READ COMMITTED every statement takes its own snapshot
anyway, and reads take no locks), and no connection ever switches mode, so none can reach a
writer in the wrong one. SQLite has one engine for both.
"""

from __future__ import annotations

import logging
import select
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.orm import start_mappers

log = logging.getLogger("opply.database")

WRITE_OPTION = "opply_write"

# SQLSTATEs that mean "the server cannot serve this connection now": class 08 (connection
# exceptions), the server shutting down or terminating us (57P01-57P03), too many connections.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database could not be reached or dropped the connection
    (as opposed to refusing the statement): nothing is wrong with the request, and trying
    again later can succeed."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection free within pool_timeout
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:  # SQLAlchemy's own verdict: the connection is gone
        return True
    original = error.orig
    sqlstate = getattr(original, "pgcode", None)
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES
    module = type(original).__module__
    if module.startswith("psycopg2"):
        # No SQLSTATE: libpq's own failure (refused, unreachable, closed unexpectedly), or
        # psycopg2 refusing a connection it already knows is closed.
        return isinstance(error, exc.OperationalError | exc.InterfaceError)
    # SQLite: another process holds the write lock beyond busy_timeout.
    return isinstance(error, exc.OperationalError) and "database is locked" in str(original)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 5, echo: bool = False
) -> Engine:
    """The write engine (on SQLite, the only one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    return _server_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)


def make_read_engine(
    write_engine: Engine, *, pool_size: int = 5, max_overflow: int = 5, echo: bool = False
) -> Engine:
    """The read engine beside ``write_engine``: its own pool of autocommit connections on a
    server database; the write engine itself on SQLite, whose reads run in a deferred BEGIN."""
    if is_sqlite(write_engine):
        return write_engine
    return _server_engine(
        write_engine.url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        echo=echo,
        isolation_level="AUTOCOMMIT",
    )


def _server_engine(url: Any, **options: Any) -> Engine:
    connect_args: dict[str, Any] = {}
    if make_url(url).get_backend_name() == "postgresql":
        connect_args = {
            "connect_timeout": 5,
            "application_name": "opply",
            # A peer that vanished without closing (a failed-over host) is noticed in about a
            # minute instead of the kernel's two hours.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    engine = create_engine(
        url,
        pool_timeout=10,
        pool_recycle=1800,
        connect_args=connect_args,
        **options,
    )
    _discard_dead_connections(engine)  # a restarted database heals without restarting the app
    return engine


def _discard_dead_connections(engine: Engine) -> None:
    """Never hand out a pooled connection the server has closed.

    A server that terminates a connection (``pg_terminate_backend``, a restart, a failover's
    shutdown, an idle timeout) sends a last message and closes its end, so the socket of an
    idle connection becomes readable; a healthy idle connection's socket has nothing to read.
    One non-blocking ``poll`` at checkout (microseconds) thus finds what ``pool_pre_ping``'s
    round trip before every transaction would, without its cost. The pool replaces such a
    connection with a new one before the request sees it.
    """

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if socket_has_news(dbapi_connection):
            raise exc.DisconnectionError("the server closed this connection while it was idle")


def socket_has_news(dbapi_connection: Any) -> bool:
    """True if an idle connection's socket is readable (the server said something unasked,
    which on an idle connection means it is closing it) or already closed."""
    if getattr(dbapi_connection, "closed", 0):
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's deferred guesswork.
        dbapi_connection.isolation_level = None
        # SQLite's lower() folds ASCII only; case-insensitive search must find "Ölmühle" for
        # "öl" here too, as it does on PostgreSQL.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes SQLite's write lock up front (BEGIN IMMEDIATE): two orders for the same
        # stock then run one after the other instead of both reading and one failing to upgrade.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    start_mappers()
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def ping(engine: Engine, timeout_seconds: float = 2.0) -> bool:
    """True when the database answers a trivial query within about ``timeout_seconds``."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(
                    f"SET LOCAL statement_timeout = {int(timeout_seconds * 1000)}"
                )
            connection.exec_driver_sql("SELECT 1")
            connection.rollback()
        return True
    except Exception:  # any failure means "not ready"; the reason goes to the log
        log.warning("database ping failed", exc_info=True)
        return False
