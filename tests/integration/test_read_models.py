"""Contract tests of the read models (the API's views without entities): in memory, on SQLite
and on PostgreSQL they show exactly what the repositories' entities show.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from opply.application.dto import OrderLineView, OrderView, ProductView
from opply.application.ports import ProductFilter, ProductSort
from opply.domain.model import Order, OrderLine, OrderStatus
from tests.integration import test_repositories as contract
from tests.integration.test_repositories import (
    T0,
    UowFactory,
    _add_order,
    _add_products,
    _add_user,
    _tag,
)

# The repositories' contract-test fixtures: each test runs in memory, on SQLite and PostgreSQL.
database = contract.database
new_uow = contract.new_uow


def test_a_product_view_shows_the_products_columns(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("Oat flour 25kg", 40))
    with new_uow() as uow:
        assert uow.product_views.get(pid) == ProductView(pid, "Oat flour 25kg", Decimal("2.50"), 40)
        assert uow.product_views.get(987_654) is None


@pytest.mark.parametrize(
    ("flt", "offset", "limit"),
    [
        (ProductFilter(), 0, 3),
        (ProductFilter(), 2, 2),
        (ProductFilter(), 10_000, 5),  # past the end
        (ProductFilter(search="TAG", in_stock=True), 0, 10),
        (ProductFilter(search="TAG", sort=ProductSort.STOCK_DESC), 1, 2),
        (ProductFilter(search="TAG", sort=ProductSort.NAME), 0, 10),
    ],
)
def test_a_page_of_product_views_is_the_repositorys_page_as_views(
    new_uow: UowFactory, flt: ProductFilter, offset: int, limit: int
) -> None:
    tag = _tag()
    _add_products(new_uow, (f"b {tag}", 0), (f"a {tag}", 5), (f"c {tag}", 5), (f"d {tag}", 1))
    if flt.search:
        flt = ProductFilter(search=tag, in_stock=flt.in_stock, sort=flt.sort)
    with new_uow() as uow:
        entities = uow.products.list(flt, offset, limit)
        views = uow.product_views.list(flt, offset, limit)
        assert list(views.items) == [ProductView.of(p) for p in entities.items]
    assert views.total == entities.total
    if flt.search:
        assert views.total == (3 if flt.in_stock else 4)


def test_an_order_view_shows_its_lines_by_product_with_their_totals(new_uow: UowFactory) -> None:
    a, b = _add_products(new_uow, ("A", 10), ("B", 10))
    customer, other = _add_user(new_uow), _add_user(new_uow)
    with new_uow().for_write() as uow:
        order = Order(
            customer,
            T0,
            "EUR",
            lines=[
                OrderLine(b, "B at the time", Decimal("3.10"), 1),
                OrderLine(a, "A at the time", Decimal("12.50"), 2),
            ],
        )
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    with new_uow() as uow:
        assert uow.order_views.get_for_customer(order.id, customer) == OrderView(
            order.id,
            "placed",
            T0,
            "EUR",
            (
                OrderLineView(a, "A at the time", Decimal("12.50"), 2, Decimal("25.00")),
                OrderLineView(b, "B at the time", Decimal("3.10"), 1, Decimal("3.10")),
            ),
            Decimal("28.10"),
        )
        assert uow.order_views.get_for_customer(order.id, other) is None
        assert uow.order_views.get_for_customer(987_654, customer) is None


def test_a_page_of_order_views_is_the_repositorys_page_as_views(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice, bob, carol = _add_user(new_uow), _add_user(new_uow), _add_user(new_uow)
    for i in range(5):
        _add_order(new_uow, alice, pid, at=T0 + timedelta(minutes=i % 2), quantity=i + 1)
    _add_order(new_uow, alice, pid, status=OrderStatus.CANCELLED)
    _add_order(new_uow, bob, pid)
    totals = {None: 6, OrderStatus.PLACED: 5, OrderStatus.CANCELLED: 1}
    with new_uow() as uow:
        for status, total in totals.items():
            for offset in (0, 2, 4, 6):
                entities = uow.orders.list_for_customer(alice, status, offset, 2)
                views = uow.order_views.list_for_customer(alice, status, offset, 2)
                assert list(views.items) == [OrderView.of(o) for o in entities.items]
                assert views.total == entities.total == total
        empty = uow.order_views.list_for_customer(carol, None, 0, 10)
    assert (list(empty.items), empty.total) == ([], 0)
