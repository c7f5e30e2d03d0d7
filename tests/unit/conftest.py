"""Fixtures for the unit tests: in-memory storage, fake hashing, fixed clocks and real JWTs.

Everything is built per test; the factories write through a unit of work so that tests see the
store exactly as a use case would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from opply.adapters.memory import (
    FakePasswordHasher,
    FixedClock,
    InMemoryStore,
    InMemoryUnitOfWork,
)
from opply.adapters.tokens import JwtTokenService
from opply.application.dto import PlaceOrderCommand
from opply.application.orders import PlaceOrder
from opply.domain.model import LineRequest, Product, User

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
ISSUER = "opply-unit-tests"
ACCESS_TTL = timedelta(minutes=5)
REFRESH_TTL = timedelta(hours=12)
CURRENCY = "EUR"
GOOD_PASSWORD = "correct horse battery staple"


def make_token_service(clock: FixedClock, secret: str = SECRET) -> JwtTokenService:
    return JwtTokenService(
        secret=secret,
        issuer=ISSUER,
        access_ttl=ACCESS_TTL,
        refresh_ttl=REFRESH_TTL,
        clock=clock,
    )


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def uow(store: InMemoryStore) -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork(store)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


@pytest.fixture
def token_clock() -> FixedClock:
    # PyJWT checks exp and iat against the real time, so tokens are issued "now".
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def tokens(token_clock: FixedClock) -> JwtTokenService:
    return make_token_service(token_clock)


@pytest.fixture
def token_service_at() -> Callable[..., JwtTokenService]:
    """A token service issuing at another time, or signing with another secret."""
    return make_token_service


@pytest.fixture
def password() -> str:
    """The password every factory-made user has."""
    return GOOD_PASSWORD


@pytest.fixture
def add_product(store: InMemoryStore) -> Callable[..., int]:
    """Create a product in the store and return its id."""

    def add(name: str = "Oat flour 25kg", price: str = "12.50", stock: int = 10) -> int:
        product = Product(name=name, price=Decimal(price), quantity_in_stock=stock)
        with InMemoryUnitOfWork(store).write() as uow:
            uow.products.add(product)
            uow.commit()
        assert product.id is not None
        return product.id

    return add


@pytest.fixture
def stock_of(store: InMemoryStore) -> Callable[[int], int]:
    def read(product_id: int) -> int:
        return store.tables.products[product_id].quantity_in_stock

    return read


@pytest.fixture
def stocks(store: InMemoryStore) -> Callable[[], dict[int, int]]:
    """Every product's stock, as the store holds it now."""

    def read() -> dict[int, int]:
        return {pid: p.quantity_in_stock for pid, p in store.tables.products.items()}

    return read


@pytest.fixture
def add_user(store: InMemoryStore, hasher: FakePasswordHasher) -> Callable[..., int]:
    """Create a user (password ``GOOD_PASSWORD`` unless told) and return its id."""

    def add(
        username: str = "alice",
        password: str = GOOD_PASSWORD,
        *,
        is_staff: bool = False,
        is_active: bool = True,
    ) -> int:
        user = User(
            username=username,
            password_hash=hasher.hash(password),
            is_staff=is_staff,
            is_active=is_active,
        )
        with InMemoryUnitOfWork(store).write() as uow:
            uow.users.add(user)
            uow.commit()
        assert user.id is not None
        return user.id

    return add


@pytest.fixture
def place_order(uow: InMemoryUnitOfWork, clock: FixedClock) -> PlaceOrder:
    return PlaceOrder(uow, clock, CURRENCY)


@pytest.fixture
def order_for(place_order: PlaceOrder) -> Callable[..., int]:
    """Place an order for a customer and return its id."""

    def place(customer_id: int, requested: Sequence[LineRequest], key: str | None = None) -> int:
        command = PlaceOrderCommand(customer_id=customer_id, lines=requested, idempotency_key=key)
        return place_order(command).order_id

    return place
