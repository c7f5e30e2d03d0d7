"""In-memory twins of every port: fast, deterministic test doubles with the same contract.

A unit of work works on a deep copy of the store and publishes it on commit, so a rollback
really leaves nothing behind. One lock serialises transactions, like a serialisable database.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opply.application.dto import OrderView, ProductView
from opply.application.ports import (
    OrderFilter,
    Page,
    ProductFilter,
    ProductSort,
    UserAccess,
    UserFilter,
)
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)


@dataclass
class _Tables:
    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    idempotency: dict[tuple[int, str], IdempotencyRecord | None] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        self.next_ids[table] = self.next_ids.get(table, 0) + 1
        return self.next_ids[table]


class InMemoryStore:
    """The 'database' shared by every unit of work of one test."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.lock = threading.RLock()
        self.commits = 0


def _product_sort_key(sort: ProductSort) -> tuple[bool, Callable[[Product], Any]]:
    """(descending?, key) for ``sort``."""
    keys: dict[str, Callable[[Product], Any]] = {
        "id": lambda p: p.id or 0,
        "name": lambda p: p.name,
        "price": lambda p: p.price,
        "stock": lambda p: p.quantity_in_stock,
    }
    return sort.value.startswith("-"), keys[sort.value.lstrip("-")]


class InMemoryProductRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, product: Product) -> None:
        product.id = self._t.next_id("products")
        self._t.products[product.id] = product

    def get(self, product_id: int) -> Product | None:
        return self._t.products.get(product_id)

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        return {i: self._t.products[i] for i in sorted(product_ids) if i in self._t.products}

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[Product]:
        found = [
            p
            for _, p in sorted(self._t.products.items())
            if (not flt.search or flt.search.casefold() in p.name.casefold())
            and (not flt.in_stock or p.quantity_in_stock > 0)
        ]
        descending, key = _product_sort_key(flt.sort)
        # Stable, even reversed: equal keys keep their id order, as in the SQL's tie-break.
        found.sort(key=key, reverse=descending)
        return Page(found[offset : offset + limit], len(found))


class InMemoryOrderRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, order: Order) -> None:
        order.id = self._t.next_id("orders")
        self._t.orders[order.id] = order

    def get_for_customer(
        self, order_id: int, customer_id: int, *, for_update: bool = False
    ) -> Order | None:
        order = self._t.orders.get(order_id)
        return order if order is not None and order.customer_id == customer_id else None

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[Order]:
        found = sorted(
            (
                o
                for o in self._t.orders.values()
                if o.customer_id == customer_id and (status is None or o.status is status)
            ),
            key=lambda o: (o.created_at, o.id or 0),
            reverse=True,
        )
        return Page(found[offset : offset + limit], len(found))

    def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        return self._t.orders.get(order_id)

    def list_all(self, flt: OrderFilter, offset: int, limit: int) -> Page[Order]:
        found = sorted(
            (
                o
                for o in self._t.orders.values()
                if (flt.customer_id is None or o.customer_id == flt.customer_id)
                and (flt.status is None or o.status is flt.status)
            ),
            key=lambda o: (o.created_at, o.id or 0),
            reverse=True,
        )
        return Page(found[offset : offset + limit], len(found))


class InMemoryProductReadModel:
    """The repository's reads, as views."""

    def __init__(self, tables: _Tables) -> None:
        self._products = InMemoryProductRepository(tables)

    def get(self, product_id: int) -> ProductView | None:
        product = self._products.get(product_id)
        return ProductView.of(product) if product is not None else None

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[ProductView]:
        found = self._products.list(flt, offset, limit)
        return Page([ProductView.of(p) for p in found.items], found.total)


class InMemoryOrderReadModel:
    """The repository's reads, as views."""

    def __init__(self, tables: _Tables) -> None:
        self._orders = InMemoryOrderRepository(tables)

    def get_for_customer(self, order_id: int, customer_id: int) -> OrderView | None:
        order = self._orders.get_for_customer(order_id, customer_id)
        return OrderView.of(order) if order is not None else None

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[OrderView]:
        found = self._orders.list_for_customer(customer_id, status, offset, limit)
        return Page([OrderView.of(o) for o in found.items], found.total)


class InMemoryUserRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, user: User) -> None:
        user.id = self._t.next_id("users")
        self._t.users[user.id] = user

    def get(self, user_id: int) -> User | None:
        return self._t.users.get(user_id)

    def access(self, user_id: int) -> UserAccess | None:
        user = self._t.users.get(user_id)
        return UserAccess(user.is_active, user.is_staff) if user is not None else None

    def get_by_username(self, username: str) -> User | None:
        return next((u for u in self._t.users.values() if u.username == username), None)

    def get_many(self, user_ids: Collection[int]) -> dict[int, User]:
        return {i: self._t.users[i] for i in sorted(user_ids) if i in self._t.users}

    def list(self, flt: UserFilter, offset: int, limit: int) -> Page[User]:
        found = sorted(
            (
                u
                for u in self._t.users.values()
                if not flt.search or flt.search.casefold() in u.username.casefold()
            ),
            key=lambda u: u.username,
        )
        return Page(found[offset : offset + limit], len(found))


class InMemoryRefreshTokenRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, token: RefreshToken) -> None:
        self._t.refresh_tokens[token.jti] = token

    def get_for_update(self, jti: str) -> RefreshToken | None:
        return self._t.refresh_tokens.get(jti)

    def revoke_family(self, family_id: str, at: datetime) -> None:
        for token in self._t.refresh_tokens.values():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = at


class InMemoryIdempotencyRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        if (customer_id, key) in self._t.idempotency:
            return False
        self._t.idempotency[(customer_id, key)] = None
        return True

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None:
        return self._t.idempotency.get((customer_id, key))

    def save(self, record: IdempotencyRecord) -> None:
        self._t.idempotency[(record.customer_id, record.key)] = record

    def purge_older_than(self, cutoff: datetime) -> int:
        old = [k for k, r in self._t.idempotency.items() if r is not None and r.created_at < cutoff]
        for k in old:
            del self._t.idempotency[k]
        return len(old)


class InMemoryUnitOfWork(UnitOfWork):
    def __init__(self, store: InMemoryStore) -> None:
        super().__init__()
        self._store = store
        self._working: _Tables | None = None

    def _begin(self, *, write: bool) -> None:
        self._store.lock.acquire()
        self._working = copy.deepcopy(self._store.tables)
        self._rebind()

    def commit(self) -> None:
        assert self._working is not None, "commit outside a unit of work"
        # Publish a copy: objects the use case still holds stay private to this unit of work,
        # as they would be in a database session.
        self._store.tables = copy.deepcopy(self._working)
        self._store.commits += 1

    def rollback(self) -> None:
        if self._working is not None:
            self._working = copy.deepcopy(self._store.tables)
            self._rebind()

    def _end(self) -> None:
        self._working = None
        self._store.lock.release()

    def _rebind(self) -> None:
        assert self._working is not None
        self.products = InMemoryProductRepository(self._working)
        self.orders = InMemoryOrderRepository(self._working)
        self.users = InMemoryUserRepository(self._working)
        self.refresh_tokens = InMemoryRefreshTokenRepository(self._working)
        self.idempotency = InMemoryIdempotencyRepository(self._working)
        self.product_views = InMemoryProductReadModel(self._working)
        self.order_views = InMemoryOrderReadModel(self._working)


class FakePasswordHasher:
    """Fast stand-in for argon2 in unit tests (never used by the running service)."""

    def __init__(self) -> None:
        self.dummy_calls = 0

    def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == self.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith("fake$")

    def dummy_verify(self, password: str) -> None:
        self.dummy_calls += 1


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 10, 15, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)
