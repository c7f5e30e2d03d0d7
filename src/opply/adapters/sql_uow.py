"""Units of work on SQLAlchemy: reads on the read engine, writes in an ORM session."""

from __future__ import annotations

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.sql_reads import SqlReadUnitOfWork
from opply.adapters.sql_writes import SqlWriteUnitOfWork


class SqlUnitOfWork:
    """Opens read and write units of work; holds nothing per request, so one serves all."""

    def __init__(
        self, read_bind: Engine | Connection, session_factory: sessionmaker[Session]
    ) -> None:
        self._read_bind = read_bind
        self._session_factory = session_factory

    def read(self) -> SqlReadUnitOfWork:
        return SqlReadUnitOfWork(self._read_bind)

    def write(self) -> SqlWriteUnitOfWork:
        return SqlWriteUnitOfWork(self._session_factory)
