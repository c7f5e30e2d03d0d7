from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.database import WRITE_OPTION
from opply.adapters.sql_read_models import SqlOrderReadModel, SqlProductReadModel
from opply.adapters.sqlalchemy_repositories import (
    SqlIdempotencyRepository,
    SqlOrderRepository,
    SqlProductRepository,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
from opply.adapters.stock_writes import flush_stock_together
from opply.application.unit_of_work import UnitOfWork


class SqlAlchemyUnitOfWork(UnitOfWork):
    """One session, one transaction. Nothing is written unless ``commit`` is called."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__()
        self._session_factory = session_factory
        self._autocommit: Any = None  # the DBAPI connection switched to autocommit, if any

    def _begin(self, *, write: bool) -> None:
        self.session = self._session_factory()
        if write:
            # Seen by the SQLite "begin" hook, which then takes the write lock up front.
            self.session.connection(execution_options={WRITE_OPTION: True})
        elif self._reads_in_autocommit():
            # A read needs no transaction on PostgreSQL: at READ COMMITTED every statement
            # takes its own snapshot anyway, and reads take no locks. Autocommit saves the
            # BEGIN and ROLLBACK round trips (two of the four a token check cost). Switched on
            # the DBAPI connection itself, which is free in psycopg2; SQLAlchemy's
            # isolation_level option would send a SET when the connection goes back to the pool.
            dbapi_connection = self.session.connection().connection.dbapi_connection
            dbapi_connection.autocommit = True  # type: ignore[union-attr]
            self._autocommit = dbapi_connection
        self.products = SqlProductRepository(self.session)
        self.orders = SqlOrderRepository(self.session)
        self.users = SqlUserRepository(self.session)
        self.refresh_tokens = SqlRefreshTokenRepository(self.session)
        self.idempotency = SqlIdempotencyRepository(self.session)
        self.product_views = SqlProductReadModel(self.session)
        self.order_views = SqlOrderReadModel(self.session)

    def _reads_in_autocommit(self) -> bool:
        bind = self.session.get_bind()
        # Only on an engine: a session bound to a connection (the tests' outer transaction)
        # cannot change its isolation level.
        return isinstance(bind, Engine) and bind.dialect.name == "postgresql"

    def commit(self) -> None:
        flush_stock_together(self.session)  # e.g. a cancelled order's products, in one UPDATE
        self.session.commit()

    def rollback(self) -> None:
        # Leave autocommit BEFORE the session lets go of the connection: once back in the pool
        # another thread may check it out for a write, whose row locks autocommit would release
        # after each statement (two orders could then both take the last unit).
        self._leave_autocommit()
        self.session.rollback()

    def _end(self) -> None:
        try:
            self._leave_autocommit()
        finally:
            self.session.close()

    def _leave_autocommit(self) -> None:
        connection, self._autocommit = self._autocommit, None
        if connection is None:
            return
        # A broken connection may refuse; the pool discards it anyway.
        with contextlib.suppress(Exception):
            connection.autocommit = False
