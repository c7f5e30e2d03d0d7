"""Ports: what the use cases need from the outside world, as Protocols.

Adapters in ``opply.adapters`` implement them twice: on SQLAlchemy and in memory.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from opply.application.dto import OrderView, ProductView
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the size of the whole list."""

    items: Sequence[T]
    total: int


class ProductSort(StrEnum):
    """Orders of the product list; ties always broken by id. A leading '-' means descending."""

    ID = "id"
    NAME = "name"
    NAME_DESC = "-name"
    PRICE = "price"
    PRICE_DESC = "-price"
    STOCK = "stock"
    STOCK_DESC = "-stock"


@dataclass(frozen=True)
class ProductFilter:
    search: str | None = None
    in_stock: bool = False
    sort: ProductSort = ProductSort.ID


class ProductRepository(Protocol):
    def add(self, product: Product) -> None: ...

    def get(self, product_id: int) -> Product | None: ...

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids``, locked against concurrent writers
        until the unit of work ends. Locks are taken in id order so that two orders naming the
        same products never deadlock."""
        ...

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[Product]:
        """Products in ``flt.sort`` order (by id unless told), ties broken by id."""
        ...


@dataclass(frozen=True)
class OrderFilter:
    customer_id: int | None = None
    status: OrderStatus | None = None


class OrderRepository(Protocol):
    def add(self, order: Order) -> None: ...

    def get_for_customer(
        self, order_id: int, customer_id: int, *, for_update: bool = False
    ) -> Order | None:
        """The order only if it belongs to ``customer_id``: another's order is 'not there'."""
        ...

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[Order]:
        """Newest first, ties broken by id (descending), lines loaded in one extra query."""
        ...

    def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        """Any customer's order (staff), with its lines."""
        ...

    def list_all(self, flt: OrderFilter, offset: int, limit: int) -> Page[Order]:
        """Every customer's orders (staff), newest first like ``list_for_customer``."""
        ...


class ProductReadModel(Protocol):
    """The catalogue as the API shows it: views read straight from storage, no entities.

    The same rows, order and totals as ``ProductRepository.get`` and ``list``, for the read
    use cases, which change nothing and so need neither the entities nor their bookkeeping.
    """

    def get(self, product_id: int) -> ProductView | None: ...

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[ProductView]: ...


class OrderReadModel(Protocol):
    """A customer's orders as the API shows them (``OrderRepository``'s reads, as views)."""

    def get_for_customer(self, order_id: int, customer_id: int) -> OrderView | None:
        """The order only if it belongs to ``customer_id``: another's order is 'not there'."""
        ...

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[OrderView]:
        """Newest first, ties broken by id (descending), lines sorted by product id."""
        ...


@dataclass(frozen=True)
class UserFilter:
    search: str | None = None  # username contains, case-insensitive


@dataclass(frozen=True)
class UserAccess:
    """What every authenticated request checks about its caller, and nothing more."""

    is_active: bool
    is_staff: bool


class UserRepository(Protocol):
    def add(self, user: User) -> None: ...

    def get(self, user_id: int) -> User | None: ...

    def access(self, user_id: int) -> UserAccess | None:
        """The caller check of every authenticated request: two columns, no entity loaded."""
        ...

    def get_by_username(self, username: str) -> User | None: ...

    def get_many(self, user_ids: Collection[int]) -> dict[int, User]:
        """The users that exist among ``user_ids``, in one query."""
        ...

    def list(self, flt: UserFilter, offset: int, limit: int) -> Page[User]:
        """Users ordered by username."""
        ...


class RefreshTokenRepository(Protocol):
    def add(self, token: RefreshToken) -> None: ...

    def get_for_update(self, jti: str) -> RefreshToken | None: ...

    def revoke_family(self, family_id: str, at: datetime) -> None: ...


class IdempotencyRepository(Protocol):
    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        """Reserve ``key`` for this customer in the current transaction.

        False if it is already taken. A concurrent claim of the same key waits until the first
        transaction ends (the database's unique index does the waiting), so two racing retries
        can never both place an order."""
        ...

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None: ...

    def save(self, record: IdempotencyRecord) -> None:
        """Fill in the claimed key with the answer; same transaction as the order."""
        ...

    def purge_older_than(self, cutoff: datetime) -> int: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real verification, for unknown usernames."""
        ...


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    is_staff: bool


@dataclass(frozen=True)
class RefreshClaims:
    user_id: int
    jti: str
    family_id: str


@dataclass(frozen=True)
class IssuedRefresh:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


class TokenService(Protocol):
    def issue_access(self, user_id: int, is_staff: bool) -> str: ...

    def issue_refresh(self, user_id: int, family_id: str) -> IssuedRefresh: ...

    def read_access(self, token: str) -> AccessClaims:
        """Raises ``InvalidToken`` unless the token is a valid, unexpired access token."""
        ...

    def read_refresh(self, token: str) -> RefreshClaims:
        """Raises ``InvalidToken`` unless the token is a valid, unexpired refresh token."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...
