"""The domain model on its own: stock rules, money, order placement and cancellation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from opply.domain.errors import (
    DuplicateProductLine,
    EmptyOrder,
    InvalidName,
    InvalidPrice,
    InvalidQuantity,
    OrderNotCancellable,
    OutOfStock,
    Shortage,
    UnknownProducts,
)
from opply.domain.model import (
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    MAX_STOCK,
    LineRequest,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)

NOW = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


def product(pid: int = 7, stock: int = 5, price: str = "12.50", name: str = "Oat flour") -> Product:
    return Product(name=name, price=Decimal(price), quantity_in_stock=stock, id=pid)


def catalogue(*items: Product) -> dict[int, Product]:
    return {p.id: p for p in items if p.id is not None}


def place(products: dict[int, Product], *pairs: tuple[int, int], customer: int = 1) -> Order:
    requests = [LineRequest(product_id=pid, quantity=qty) for pid, qty in pairs]
    return Order.place(
        customer_id=customer, requests=requests, products=products, created_at=NOW, currency="EUR"
    )


# --- Product stock -------------------------------------------------------------------------------


def test_taking_stock_lowers_it() -> None:
    p = product(stock=5)
    p.take(3)
    assert p.quantity_in_stock == 2


def test_taking_the_whole_stock_leaves_zero() -> None:
    p = product(stock=5)
    p.take(5)
    assert p.quantity_in_stock == 0


def test_taking_more_than_the_stock_is_refused_and_names_the_product() -> None:
    p = product(pid=7, stock=2)
    with pytest.raises(OutOfStock) as caught:
        p.take(5)
    assert caught.value.shortages == (Shortage(product_id=7, requested=5, available=2),)
    assert "Product 7" in caught.value.detail
    assert caught.value.code == "out_of_stock"
    assert p.quantity_in_stock == 2


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "2"])
def test_taking_a_quantity_that_is_not_a_positive_whole_number_is_refused(
    quantity: object,
) -> None:
    p = product(stock=5)
    with pytest.raises(InvalidQuantity):
        p.take(quantity)  # type: ignore[arg-type]
    assert p.quantity_in_stock == 5


def test_restocking_adds_to_the_stock() -> None:
    p = product(stock=5)
    p.restock(4)
    assert p.quantity_in_stock == 9


@pytest.mark.parametrize("quantity", [0, -3, False, 2.0])
def test_restocking_a_quantity_that_is_not_a_positive_whole_number_is_refused(
    quantity: object,
) -> None:
    p = product(stock=5)
    with pytest.raises(InvalidQuantity):
        p.restock(quantity)  # type: ignore[arg-type]
    assert p.quantity_in_stock == 5


def test_restocking_beyond_the_largest_stock_is_refused() -> None:
    p = product(stock=MAX_STOCK - 1)
    with pytest.raises(InvalidQuantity):
        p.restock(2)
    assert p.quantity_in_stock == MAX_STOCK - 1


@pytest.mark.parametrize("quantity", [0, 3, MAX_STOCK])
def test_setting_the_stock_replaces_it(quantity: int) -> None:
    p = product(stock=5)
    p.update(quantity_in_stock=quantity)
    assert p.quantity_in_stock == quantity


@pytest.mark.parametrize("quantity", [-1, MAX_STOCK + 1, True, 1.0])
def test_setting_the_stock_below_zero_or_to_a_non_integer_is_refused(quantity: object) -> None:
    p = product(stock=5)
    with pytest.raises(InvalidQuantity):
        p.update(quantity_in_stock=quantity)
    assert p.quantity_in_stock == 5


@pytest.mark.parametrize("stock", [-1, MAX_STOCK + 1, True, 2.5])
def test_a_product_cannot_be_created_with_a_bad_stock(stock: object) -> None:
    with pytest.raises(InvalidQuantity):
        Product(name="Oat flour", price=Decimal("1.00"), quantity_in_stock=stock)  # type: ignore[arg-type]


# --- Product price and name ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "price",
    [
        Decimal("-0.01"),
        Decimal("1.001"),
        Decimal("0.005"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("10000000000.00"),
        Decimal("1E+30"),
        12.5,
        "12.50",
    ],
)
def test_a_bad_price_is_refused(price: object) -> None:
    with pytest.raises(InvalidPrice):
        Product(name="Oat flour", price=price, quantity_in_stock=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "stored"),
    [("0", "0.00"), ("12.5", "12.50"), ("12.50", "12.50"), ("9999999999.99", "9999999999.99")],
)
def test_a_valid_price_is_kept_with_two_places(price: str, stored: str) -> None:
    p = Product(name="Oat flour", price=Decimal(price), quantity_in_stock=1)
    assert str(p.price) == stored


def test_an_edit_with_one_bad_value_changes_nothing() -> None:
    p = product(name="Oat flour", price="12.50", stock=5)
    with pytest.raises(InvalidPrice):
        p.update(name="Rye flour", quantity_in_stock=9, price=Decimal("-1"))
    assert (p.name, p.price, p.quantity_in_stock) == ("Oat flour", Decimal("12.50"), 5)


def test_only_the_editable_fields_can_be_edited() -> None:
    p = product()
    with pytest.raises(TypeError, match="id"):
        p.update(id=99)
    assert p.id == 7


def test_repricing_to_a_bad_price_keeps_the_old_one() -> None:
    p = product(price="12.50")
    with pytest.raises(InvalidPrice):
        p.update(price=Decimal("-1"))
    assert p.price == Decimal("12.50")


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_blank_or_overlong_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        Product(name=name, price=Decimal("1.00"), quantity_in_stock=1)


def test_a_name_is_stripped_of_surrounding_whitespace() -> None:
    assert Product(name="  Oat flour  ", price=Decimal("1.00")).name == "Oat flour"


def test_renaming_to_a_blank_name_keeps_the_old_one() -> None:
    p = product(name="Oat flour")
    with pytest.raises(InvalidName):
        p.update(name="  ")
    assert p.name == "Oat flour"


# --- Placing an order ----------------------------------------------------------------------------


def test_placing_an_order_takes_the_stock_of_every_line() -> None:
    products = catalogue(product(1, stock=5), product(2, stock=3))
    order = place(products, (1, 2), (2, 3))
    assert products[1].quantity_in_stock == 3
    assert products[2].quantity_in_stock == 0
    assert order.status is OrderStatus.PLACED
    assert [(ln.product_id, ln.quantity) for ln in order.lines] == [(1, 2), (2, 3)]


def test_an_order_short_on_one_line_of_three_changes_no_stock_and_lists_the_shortage() -> None:
    products = catalogue(product(1, stock=5), product(2, stock=1), product(3, stock=9))
    with pytest.raises(OutOfStock) as caught:
        place(products, (1, 2), (2, 4), (3, 9))
    assert caught.value.shortages == (Shortage(product_id=2, requested=4, available=1),)
    assert {pid: p.quantity_in_stock for pid, p in products.items()} == {1: 5, 2: 1, 3: 9}


def test_an_order_short_on_several_lines_lists_every_short_line() -> None:
    products = catalogue(product(1, stock=0), product(2, stock=1), product(3, stock=9))
    with pytest.raises(OutOfStock) as caught:
        place(products, (1, 1), (2, 4), (3, 9))
    assert set(caught.value.shortages) == {
        Shortage(product_id=1, requested=1, available=0),
        Shortage(product_id=2, requested=4, available=1),
    }
    assert "Product 1 has 0 in stock, 1 requested" in caught.value.detail
    assert "Product 2 has 1 in stock, 4 requested" in caught.value.detail
    assert {pid: p.quantity_in_stock for pid, p in products.items()} == {1: 0, 2: 1, 3: 9}


def test_an_order_naming_unknown_products_names_them_and_changes_nothing() -> None:
    products = catalogue(product(1, stock=5))
    with pytest.raises(UnknownProducts) as caught:
        place(products, (1, 1), (42, 1), (41, 2))
    assert caught.value.product_ids == (41, 42)
    assert "41" in caught.value.detail
    assert "42" in caught.value.detail
    assert products[1].quantity_in_stock == 5


def test_an_order_with_the_same_product_on_two_lines_is_refused() -> None:
    products = catalogue(product(1, stock=5), product(2, stock=5))
    with pytest.raises(DuplicateProductLine) as caught:
        place(products, (1, 1), (2, 1), (1, 2))
    assert caught.value.product_ids == (1,)
    assert products[1].quantity_in_stock == 5


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(EmptyOrder):
        place(catalogue(product(1)))


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1])
def test_an_order_line_quantity_outside_one_to_ten_thousand_is_refused(quantity: int) -> None:
    products = catalogue(product(1, stock=MAX_LINE_QUANTITY + 5))
    with pytest.raises(InvalidQuantity):
        place(products, (1, quantity))
    assert products[1].quantity_in_stock == MAX_LINE_QUANTITY + 5


def test_an_order_line_of_ten_thousand_units_is_allowed() -> None:
    products = catalogue(product(1, stock=MAX_LINE_QUANTITY))
    place(products, (1, MAX_LINE_QUANTITY))
    assert products[1].quantity_in_stock == 0


def test_an_order_of_a_hundred_lines_is_allowed_but_not_one_more() -> None:
    products = catalogue(*(product(i, stock=1) for i in range(1, MAX_ORDER_LINES + 2)))
    with pytest.raises(InvalidQuantity):
        place(products, *((i, 1) for i in range(1, MAX_ORDER_LINES + 2)))
    assert all(p.quantity_in_stock == 1 for p in products.values())

    order = place(products, *((i, 1) for i in range(1, MAX_ORDER_LINES + 1)))
    assert len(order.lines) == MAX_ORDER_LINES


def test_an_order_total_is_exact_in_decimal() -> None:
    products = catalogue(product(1, stock=10, price="0.10"))
    order = place(products, (1, 3))
    assert order.total == Decimal("0.30")
    assert str(order.total) == "0.30"
    assert order.lines[0].line_total == Decimal("0.30")


def test_an_order_total_is_the_sum_of_its_line_totals() -> None:
    products = catalogue(product(1, price="12.50"), product(2, price="0.99"), product(3, price="0"))
    order = place(products, (1, 2), (2, 3), (3, 1))
    assert [ln.line_total for ln in order.lines] == [
        Decimal("25.00"),
        Decimal("2.97"),
        Decimal("0.00"),
    ]
    assert order.total == Decimal("27.97")


def test_an_order_line_keeps_the_name_and_price_of_the_moment_it_was_placed() -> None:
    p = product(1, price="12.50", name="Oat flour")
    order = place(catalogue(p), (1, 2))
    p.update(name="Rye flour", price=Decimal("99.00"))
    assert order.lines[0] == OrderLine(
        product_id=1, product_name="Oat flour", unit_price=Decimal("12.50"), quantity=2
    )
    assert order.total == Decimal("25.00")


def test_an_order_line_cannot_be_changed() -> None:
    line = OrderLine(
        product_id=1, product_name="Oat flour", unit_price=Decimal("12.50"), quantity=2
    )
    with pytest.raises(AttributeError):
        line.quantity = 3  # type: ignore[misc]


# --- Cancelling an order -------------------------------------------------------------------------


def test_cancelling_an_order_puts_its_units_back() -> None:
    products = catalogue(product(1, stock=5), product(2, stock=3))
    order = place(products, (1, 2), (2, 3))
    order.cancel(products)
    assert order.status is OrderStatus.CANCELLED
    assert products[1].quantity_in_stock == 5
    assert products[2].quantity_in_stock == 3


def test_cancelling_an_order_twice_is_refused_and_restocks_only_once() -> None:
    products = catalogue(product(1, stock=5))
    order = place(products, (1, 2))
    order.id = 31
    order.cancel(products)
    with pytest.raises(OrderNotCancellable) as caught:
        order.cancel(products)
    assert caught.value.order_id == 31
    assert caught.value.order_status == "cancelled"
    assert products[1].quantity_in_stock == 5
