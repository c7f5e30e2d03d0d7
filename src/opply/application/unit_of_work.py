"""Units of work, in two modes chosen explicitly by the use case: ``uow.read()`` or ``uow.write()``.

* A **read** unit of work answers the queries the API and the admin show (one method per read,
  each one statement or a fixed few), on a plain connection: no entities, no session
  bookkeeping. It has no repositories and cannot commit; the SQL one refuses any statement
  that is not a SELECT.
* A **write** unit of work is one transaction around loading aggregates from the repositories,
  changing them and committing. Leaving it without ``commit()`` rolls everything back;
  ``commit()`` outside it raises.

Either raises ``StoreUnavailable`` when the store cannot be reached or drops the connection
(never a driver's own exception): the caller answers "try again", not "bug".

ABCs rather than Protocols, because those rules are behaviour every implementation shares.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import NoReturn, ParamSpec, Protocol, Self, TypeVar

from opply.application.dto import (
    AddressView,
    Credentials,
    EndpointTrouble,
    ExportFilter,
    ExportLine,
    FeedPosition,
    OrderEventView,
    OrderFilter,
    OrdersToShip,
    OrderView,
    Page,
    PageRequest,
    ProductFilter,
    ProductView,
    RecordedEvent,
    Sales,
    UserAccess,
    UserFilter,
    UserView,
    view_of_order,
)
from opply.application.ports import (
    AddressRepository,
    EventOutbox,
    IdempotencyRepository,
    InvoiceCounter,
    OrderRepository,
    ProductRepository,
    RefreshTokenRepository,
    UserRepository,
)

P = ParamSpec("P")
R = TypeVar("R")


class UnitOfWorkError(RuntimeError):
    """A unit of work used against its mode: a bug in the caller, never a client's error."""


class StoreUnavailable(Exception):
    """The store could not be reached, or the connection to it was lost mid-way: nothing is
    wrong with the request, and trying again later can succeed.

    A read, or a write whose commit was never sent, changed nothing. A write whose connection
    was lost *while committing* may or may not have been kept (``outcome_unknown``): only a
    retry the store recognises as the same one (an order's Idempotency-Key) is safe then.
    """

    def __init__(self, detail: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.outcome_unknown = outcome_unknown


def retried_if_nothing_kept(call: Callable[P, R]) -> Callable[P, R]:
    """For a use case that writes: run it once more if the store lost its connection before
    the commit was sent (the store then kept nothing, so the second run starts from the same
    state). A second loss, or one while committing (kept or not, nobody knows), propagates:
    the client retries, with its Idempotency-Key where it matters."""

    @functools.wraps(call)
    def once_more_if_nothing_kept(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return call(*args, **kwargs)
        except StoreUnavailable as lost:
            if lost.outcome_unknown:
                raise
        return call(*args, **kwargs)

    once_more_if_nothing_kept.retried_if_nothing_kept = True  # type: ignore[attr-defined]
    return once_more_if_nothing_kept


class ReadUnitOfWork(abc.ABC):
    """The views, read straight from storage. ``with uow.read() as reads: reads.product(7)``."""

    def __enter__(self) -> Self:
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()

    def commit(self) -> NoReturn:
        raise UnitOfWorkError("a read unit of work cannot commit: open it with uow.write()")

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _end(self) -> None: ...

    # --- the reads: each is one query, here and in every implementation -----------------

    @abc.abstractmethod
    def product(self, product_id: int) -> ProductView | None: ...

    @abc.abstractmethod
    def product_page(self, flt: ProductFilter, page: PageRequest) -> Page[ProductView]:
        """Products in ``flt.sort`` order (by id unless told), ties broken by id."""

    @abc.abstractmethod
    def order(self, order_id: int, *, customer_id: int | None = None) -> OrderView | None:
        """An order with its lines; with ``customer_id``, only if it is that customer's."""

    @abc.abstractmethod
    def order_page(self, flt: OrderFilter, page: PageRequest) -> Page[OrderView]:
        """Newest first, ties broken by id (newest first), so pages never repeat or skip."""

    @abc.abstractmethod
    def order_events(
        self, customer_id: int, *, after: FeedPosition, limit: int
    ) -> list[OrderEventView]:
        """The customer's order events after ``after``, oldest first, at most ``limit``: only
        events no transaction still running can come before (see ``FeedPosition``), so a
        reader that goes on from the last one it got sees every event exactly once."""

    @abc.abstractmethod
    def addresses(self, customer_id: int) -> list[AddressView]:
        """The customer's address book: the default first, then newest first."""

    @abc.abstractmethod
    def address(self, address_id: int, *, customer_id: int) -> AddressView | None:
        """One address, only if it is that customer's."""

    @abc.abstractmethod
    def user_access(self, user_id: int, *, login: str) -> UserAccess | None:
        """The caller check of every authenticated request, one small statement: the account's
        state, and whether the login (refresh token family) ``login`` has been revoked."""

    @abc.abstractmethod
    def credentials(self, username: str) -> Credentials | None: ...

    @abc.abstractmethod
    def user(self, username: str) -> UserView | None: ...

    @abc.abstractmethod
    def user_page(self, flt: UserFilter, page: PageRequest) -> Page[UserView]:
        """Users ordered by username."""

    # --- the admin's dashboard and the orders export -------------------------------------

    @abc.abstractmethod
    def orders_to_ship(self, *, limit: int) -> OrdersToShip:
        """The oldest placed orders first (ties by id), at most ``limit``, with their totals
        and customer, and how many orders are placed in all."""

    @abc.abstractmethod
    def products_running_low(self, *, threshold: int, limit: int) -> Page[ProductView]:
        """Products with at most ``threshold`` in stock, lowest stock first (ties by id), at
        most ``limit`` of them; the page's total counts them all."""

    @abc.abstractmethod
    def sales(self, bounds: Sequence[datetime]) -> list[Sales]:
        """For each stretch of time ``[bounds[i], bounds[i + 1])`` (ascending UTC instants),
        the orders placed in it that are not cancelled, with their net and VAT (each line's
        VAT rounded as the order rounds it, so they add up to the orders' totals): one entry
        per stretch, zeros for one without orders."""

    @abc.abstractmethod
    def webhook_endpoints_in_trouble(self, *, limit: int) -> Page[EndpointTrouble]:
        """Webhook endpoints that are disabled or have failed deliveries, with how many
        failed: the disabled first, then the most failed deliveries first (ties by id), at
        most ``limit``; the page's total counts them all."""

    @abc.abstractmethod
    def order_lines_export(self, flt: ExportFilter, *, chunk: int) -> Iterator[ExportLine]:
        """Every line of the orders ``flt`` picks, oldest order first (ties by id), lines by
        product. The rows come from the store ``chunk`` at a time, never all at once, while
        the unit of work stays open: iterate it inside the ``with``."""


class WriteUnitOfWork(abc.ABC):
    """One transaction: load aggregates, change them, ``commit()``; otherwise nothing stays."""

    products: ProductRepository
    orders: OrderRepository
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    idempotency: IdempotencyRepository
    outbox: EventOutbox
    addresses: AddressRepository
    invoice_numbers: InvoiceCounter

    _active = False

    def __enter__(self) -> Self:
        self._begin()
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        try:
            self._rollback()  # a no-op after a commit
        finally:
            self._end()
        if exc is not None and not isinstance(exc, StoreUnavailable):
            unavailable = self._unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc

    def commit(self) -> None:
        if not self._active:
            raise UnitOfWorkError("commit outside its write unit of work (use `with uow.write()`)")
        self._write_down_events()
        self._commit()

    def _write_down_events(self) -> None:
        """What the orders of this transaction recorded goes into the outbox, in the same
        transaction, each with the order as it stands now: the one way events are made."""
        recorded = []
        for order in self.orders.seen:
            assert order.id is not None, "the repository assigns the id on add"
            for event in order.events:
                recorded.append(
                    RecordedEvent(
                        type=event.type,
                        occurred_at=event.occurred_at,
                        order_id=order.id,
                        customer_id=order.customer_id,
                        order=view_of_order(order),
                    )
                )
            order.events.clear()
        if recorded:
            self.outbox.add(recorded)

    def _unavailable(self, error: BaseException) -> StoreUnavailable | None:
        """``error`` as the store's unavailability (the transaction was not kept), if that is
        what it means; otherwise None and it propagates as it is."""
        return None

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None:
        """Undo everything not committed; a no-op after ``commit``."""

    @abc.abstractmethod
    def _end(self) -> None:
        """Release what the transaction held (its session, its connection)."""


class UnitOfWork(Protocol):
    """Opens units of work; stateless, so one serves every request."""

    def read(self) -> ReadUnitOfWork: ...

    def write(self) -> WriteUnitOfWork: ...
