"""The staff use cases behind the admin, on the in-memory twins and on the real databases alike."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from opply.adapters.memory import FakePasswordHasher, FixedClock
from opply.application.auth import AuthenticateStaff, GetActiveStaff
from opply.application.dto import PageRequest, PlaceOrderCommand
from opply.application.orders import CancelOrderAsStaff, GetOrderAsStaff, ListAllOrders, PlaceOrder
from opply.application.ports import ProductFilter, ProductSort, UserFilter
from opply.application.products import CreateProduct, ListProducts, NewProduct
from opply.application.unit_of_work import UnitOfWork
from opply.application.users import CreateUser, ListUsers, NewUser, SetUserActive
from opply.domain.errors import (
    AuthenticationFailed,
    NotAuthenticated,
    OrderNotCancellable,
    OrderNotFound,
    PermissionDenied,
)
from opply.domain.model import LineRequest, OrderStatus
from tests.integration import test_repositories as contract

PASSWORD = "a-long-test-password"
UowFactory = Callable[[], UnitOfWork]


# The repositories' contract-test fixtures: each test runs in memory, on SQLite and PostgreSQL.
database = contract.database
new_uow = contract.new_uow


@pytest.fixture
def uows(new_uow: UowFactory) -> UowFactory:
    return new_uow


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


def make_user(uows: UowFactory, hasher: Any, name: str, *, staff: bool = False) -> int:
    return CreateUser(uows(), hasher)(NewUser(name, PASSWORD, is_staff=staff)).id


def make_product(uows: UowFactory, name: str, price: str, stock: int) -> int:
    return CreateProduct(uows())(NewProduct(name, Decimal(price), stock)).id


def test_products_sort_by_each_column_with_ties_broken_by_id(uows: UowFactory) -> None:
    a = make_product(uows, "Alpha", "2.00", 5)
    b = make_product(uows, "Bravo", "1.00", 5)
    c = make_product(uows, "Charlie", "2.00", 1)

    def ids(sort: ProductSort) -> list[int]:
        found = ListProducts(uows())(ProductFilter(sort=sort), PageRequest(1, 10))
        return [p.id for p in found.items]

    assert ids(ProductSort.ID) == [a, b, c]
    assert ids(ProductSort.NAME_DESC) == [c, b, a]
    assert ids(ProductSort.PRICE) == [b, a, c]
    assert ids(ProductSort.PRICE_DESC) == [a, c, b]
    assert ids(ProductSort.STOCK) == [c, a, b]
    assert ids(ProductSort.STOCK_DESC) == [a, b, c]


def test_staff_list_every_customers_orders_newest_first_and_filter_them(
    uows: UowFactory, hasher: FakePasswordHasher
) -> None:
    ann = make_user(uows, hasher, "ann")
    bob = make_user(uows, hasher, "bob")
    oats = make_product(uows, "Oats", "2.50", 10)
    clock = FixedClock()
    place = PlaceOrder(uows(), clock, "EUR")
    made = []
    for customer in (ann, bob, ann):
        made.append(place(PlaceOrderCommand(customer, [LineRequest(oats, 1)])).order.id)
        clock.advance(minutes=1)
    CancelOrderAsStaff(uows())(made[0])

    everything = ListAllOrders(uows())(None, None, PageRequest(1, 10))
    assert [o.order.id for o in everything.items] == [made[2], made[1], made[0]]
    assert [o.customer_username for o in everything.items] == ["ann", "bob", "ann"]
    assert everything.total == 3
    anns_placed = ListAllOrders(uows())("ann", OrderStatus.PLACED, PageRequest(1, 10))
    assert [o.order.id for o in anns_placed.items] == [made[2]]
    assert ListAllOrders(uows())("nobody", None, PageRequest(1, 10)).total == 0
    second_page = ListAllOrders(uows())(None, None, PageRequest(2, 2))
    assert [o.order.id for o in second_page.items] == [made[0]]


def test_staff_cancel_any_placed_order_once_and_the_stock_comes_back(
    uows: UowFactory, hasher: FakePasswordHasher
) -> None:
    ann = make_user(uows, hasher, "ann")
    oats = make_product(uows, "Oats", "2.50", 10)
    order = PlaceOrder(uows(), FixedClock(), "EUR")(
        PlaceOrderCommand(ann, [LineRequest(oats, 4)])
    ).order
    cancelled = CancelOrderAsStaff(uows())(order.id)
    assert cancelled.order.status == "cancelled"
    assert cancelled.customer_username == "ann"
    assert ListProducts(uows())(ProductFilter(), PageRequest()).items[0].quantity_in_stock == 10
    with pytest.raises(OrderNotCancellable):
        CancelOrderAsStaff(uows())(order.id)
    assert ListProducts(uows())(ProductFilter(), PageRequest()).items[0].quantity_in_stock == 10
    assert GetOrderAsStaff(uows())(order.id).order.status == "cancelled"
    with pytest.raises(OrderNotFound):
        CancelOrderAsStaff(uows())(order.id + 1000)


def test_users_are_listed_by_username_and_searched(
    uows: UowFactory, hasher: FakePasswordHasher
) -> None:
    for name in ("carol", "Carlos", "dave"):
        make_user(uows, hasher, name)
    found = ListUsers(uows())(UserFilter(search="CAR"), PageRequest(1, 10))
    assert sorted(u.username for u in found.items) == ["Carlos", "carol"]
    assert found.total == 2
    assert ListUsers(uows())(UserFilter(), PageRequest(1, 10)).total == 3


def test_only_active_staff_with_the_right_password_get_into_the_admin(
    uows: UowFactory, hasher: FakePasswordHasher
) -> None:
    staff_id = make_user(uows, hasher, "boss", staff=True)
    make_user(uows, hasher, "customer")
    login = AuthenticateStaff(uows(), hasher)
    assert login("boss", PASSWORD).id == staff_id
    with pytest.raises(AuthenticationFailed):
        login("boss", "wrong-password")
    with pytest.raises(AuthenticationFailed):
        login("ghost", PASSWORD)
    assert hasher.dummy_calls == 1  # an unknown user costs a hash check too
    with pytest.raises(PermissionDenied):
        login("customer", PASSWORD)
    assert GetActiveStaff(uows())(staff_id).username == "boss"
    SetUserActive(uows())("boss", False)
    with pytest.raises(AuthenticationFailed):
        login("boss", PASSWORD)
    with pytest.raises(NotAuthenticated):
        GetActiveStaff(uows())(staff_id)
