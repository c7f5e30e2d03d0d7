"""The staff use cases behind the admin, on the in-memory twins and on the real databases alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from opply.adapters.memory import FakePasswordHasher, FixedClock
from opply.application.auth import AuthenticateStaff, GetActiveStaff
from opply.application.dto import (
    NewProduct,
    NewUser,
    PageRequest,
    PlaceOrderCommand,
    ProductFilter,
    UserFilter,
)
from opply.application.orders import (
    GetOrderAsStaff,
    ListAllOrders,
    MoveOrder,
    OrderAction,
    PlaceOrder,
)
from opply.application.products import CreateProduct, ListProducts
from opply.application.unit_of_work import UnitOfWork
from opply.application.users import CreateUser, ListUsers, SetUserActive
from opply.domain.errors import (
    AuthenticationFailed,
    NotAuthenticated,
    OrderNotCancellable,
    OrderNotFound,
    PermissionDenied,
)
from opply.domain.model import LineRequest, OrderStatus

PASSWORD = "a-long-test-password"
PAGE = PageRequest(page=1, page_size=10)


@pytest.fixture
def uow(contract_uow: UnitOfWork) -> UnitOfWork:
    """Each test runs in memory, on SQLite and on PostgreSQL."""
    return contract_uow


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


def make_user(uow: UnitOfWork, hasher: Any, name: str, *, staff: bool = False) -> int:
    return CreateUser(uow, hasher)(NewUser(username=name, password=PASSWORD, is_staff=staff)).id


def make_product(uow: UnitOfWork, name: str, price: str, stock: int) -> int:
    new = NewProduct(name=name, price=Decimal(price), quantity_in_stock=stock)
    return CreateProduct(uow)(new).id


def order(customer: int, product: int, quantity: int) -> PlaceOrderCommand:
    lines = [LineRequest(product_id=product, quantity=quantity)]
    return PlaceOrderCommand(customer_id=customer, lines=lines)


def test_staff_list_every_customers_orders_newest_first_and_filter_them(
    uow: UnitOfWork, hasher: FakePasswordHasher
) -> None:
    ann = make_user(uow, hasher, "ann")
    bob = make_user(uow, hasher, "bob")
    oats = make_product(uow, "Oats", "2.50", 10)
    clock = FixedClock()
    place = PlaceOrder(uow, clock, "EUR")
    made = []
    for customer in (ann, bob, ann):
        made.append(place(order(customer, oats, 1)).order_id)
        clock.advance(minutes=1)
    MoveOrder(uow, FixedClock())(made[0], OrderAction.CANCEL)

    everything = ListAllOrders(uow)(None, None, PAGE)
    assert [o.id for o in everything.items] == [made[2], made[1], made[0]]
    assert [o.customer.username for o in everything.items] == ["ann", "bob", "ann"]
    assert everything.total == 3
    anns_placed = ListAllOrders(uow)("ann", OrderStatus.PLACED, PAGE)
    assert [o.id for o in anns_placed.items] == [made[2]]
    assert ListAllOrders(uow)("nobody", None, PAGE).total == 0
    second_page = ListAllOrders(uow)(None, None, PageRequest(page=2, page_size=2))
    assert [o.id for o in second_page.items] == [made[0]]


def test_staff_cancel_any_placed_order_once_and_the_stock_comes_back(
    uow: UnitOfWork, hasher: FakePasswordHasher
) -> None:
    ann = make_user(uow, hasher, "ann")
    oats = make_product(uow, "Oats", "2.50", 10)
    order_id = PlaceOrder(uow, FixedClock(), "EUR")(order(ann, oats, 4)).order_id
    cancelled = MoveOrder(uow, FixedClock())(order_id, OrderAction.CANCEL)
    assert cancelled.status == "cancelled"
    assert cancelled.customer is not None
    assert cancelled.customer.username == "ann"
    assert ListProducts(uow)(ProductFilter(), PageRequest()).items[0].quantity_in_stock == 10
    with pytest.raises(OrderNotCancellable):
        MoveOrder(uow, FixedClock())(order_id, OrderAction.CANCEL)
    assert ListProducts(uow)(ProductFilter(), PageRequest()).items[0].quantity_in_stock == 10
    assert GetOrderAsStaff(uow)(order_id).status == "cancelled"
    with pytest.raises(OrderNotFound):
        MoveOrder(uow, FixedClock())(order_id + 1000, OrderAction.CANCEL)


def test_users_are_listed_by_username_and_searched(
    uow: UnitOfWork, hasher: FakePasswordHasher
) -> None:
    for name in ("carol", "Carlos", "dave"):
        make_user(uow, hasher, name)
    found = ListUsers(uow)(UserFilter(search="CAR"), PAGE)
    assert sorted(u.username for u in found.items) == ["Carlos", "carol"]
    assert found.total == 2
    assert ListUsers(uow)(UserFilter(), PAGE).total == 3


def test_only_active_staff_with_the_right_password_get_into_the_admin(
    uow: UnitOfWork, hasher: FakePasswordHasher
) -> None:
    staff_id = make_user(uow, hasher, "boss", staff=True)
    make_user(uow, hasher, "customer")
    login = AuthenticateStaff(uow, hasher)
    assert login("boss", PASSWORD).id == staff_id
    with pytest.raises(AuthenticationFailed):
        login("boss", "wrong-password")
    with pytest.raises(AuthenticationFailed):
        login("ghost", PASSWORD)
    assert hasher.dummy_calls == 1  # an unknown user costs a hash check too
    with pytest.raises(PermissionDenied):
        login("customer", PASSWORD)
    assert GetActiveStaff(uow)(staff_id).username == "boss"
    SetUserActive(uow)("boss", False)
    with pytest.raises(AuthenticationFailed):
        login("boss", PASSWORD)
    with pytest.raises(NotAuthenticated):
        GetActiveStaff(uow)(staff_id)
