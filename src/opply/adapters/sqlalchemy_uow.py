from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.database import WRITE_OPTION
from opply.adapters.sqlalchemy_repositories import (
    SqlIdempotencyRepository,
    SqlOrderRepository,
    SqlProductRepository,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
from opply.application.unit_of_work import UnitOfWork


class SqlAlchemyUnitOfWork(UnitOfWork):
    """One session, one transaction. Nothing is written unless ``commit`` is called."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__()
        self._session_factory = session_factory

    def _begin(self, *, write: bool) -> None:
        self.session = self._session_factory()
        if write:
            # Seen by the SQLite "begin" hook, which then takes the write lock up front.
            self.session.connection(execution_options={WRITE_OPTION: True})
        self.products = SqlProductRepository(self.session)
        self.orders = SqlOrderRepository(self.session)
        self.users = SqlUserRepository(self.session)
        self.refresh_tokens = SqlRefreshTokenRepository(self.session)
        self.idempotency = SqlIdempotencyRepository(self.session)

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def _end(self) -> None:
        self.session.close()
