"""The unit of work: one transaction around one use case.

An ABC rather than a Protocol because "roll back on exit unless committed" is behaviour every
implementation shares.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from opply.application.ports import (
    IdempotencyRepository,
    OrderReadModel,
    OrderRepository,
    ProductReadModel,
    ProductRepository,
    RefreshTokenRepository,
    UserRepository,
)


class UnitOfWork(abc.ABC):
    products: ProductRepository
    orders: OrderRepository
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    idempotency: IdempotencyRepository
    product_views: ProductReadModel
    order_views: OrderReadModel

    def __init__(self) -> None:
        self._write = False

    def for_write(self) -> Self:
        """Declare, before entering, that this transaction will write.

        Storage that cannot upgrade a read transaction safely (SQLite) takes its write lock at
        the start instead of failing halfway."""
        self._write = True
        return self

    def __enter__(self) -> Self:
        self._begin(write=self._write)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._write = False
            self._end()

    @abc.abstractmethod
    def _begin(self, *, write: bool) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None:
        """Undo everything not committed; a no-op after ``commit``."""

    def _end(self) -> None:  # noqa: B027 - optional hook
        """Release resources after the transaction (close the session)."""
