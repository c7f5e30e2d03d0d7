"""The domain model on its own: stock rules, money, order placement and cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opply.domain.errors import (
    DuplicateProductLine,
    EmptyOrder,
    InvalidName,
    InvalidPrice,
    InvalidProductField,
    InvalidQuantity,
    InvalidSku,
    InvalidStatusTransition,
    OrderNotCancellable,
    OutOfStock,
    Shortage,
    UnknownProducts,
)
from opply.domain.model import (
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    MAX_STOCK,
    MOVES,
    ZERO,
    LineRequest,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    default_sku,
    line_amounts,
)

NOW = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
LATEST = NOW + timedelta(days=1)


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
    assert order.lines[0].amounts.total == Decimal("0.30")


def test_an_order_total_is_the_sum_of_its_line_totals() -> None:
    products = catalogue(product(1, price="12.50"), product(2, price="0.99"), product(3, price="0"))
    order = place(products, (1, 2), (2, 3), (3, 1))
    assert [ln.amounts.total for ln in order.lines] == [
        Decimal("25.00"),
        Decimal("2.97"),
        Decimal("0.00"),
    ]
    assert order.total == Decimal("27.97")


def test_an_order_line_keeps_what_the_product_was_at_the_moment_it_was_placed() -> None:
    p = product(1, price="12.50", name="Oat flour")
    p.update(sku="OAT-1", unit="bag", vat_rate=Decimal("7.00"))
    order = place(catalogue(p), (1, 2))
    p.update(name="Rye flour", price=Decimal("99.00"), sku="RYE-1", unit="sack", vat_rate=ZERO)
    assert order.lines[0] == line(1, "12.50", 2, vat="7.00", name="Oat flour", sku="OAT-1")
    assert order.total == Decimal("26.75")


def test_an_order_line_cannot_be_changed() -> None:
    first = line(1, "12.50", 2)
    with pytest.raises(AttributeError):
        first.quantity = 3  # type: ignore[misc]


# --- VAT -----------------------------------------------------------------------------------------


def line(
    pid: int,
    price: str,
    quantity: int,
    *,
    vat: str = "0.00",
    name: str = "Oat flour",
    sku: str = "OAT-1",
    unit: str = "bag",
) -> OrderLine:
    return OrderLine(
        product_id=pid,
        sku=sku,
        product_name=name,
        unit=unit,
        unit_price=Decimal(price),
        vat_rate=Decimal(vat),
        quantity=quantity,
    )


@pytest.mark.parametrize(
    ("price", "quantity", "rate", "net", "vat", "total"),
    [
        # The contract's own example: 37.50 x 7% = 2.625, half up to 2.63.
        ("12.50", 3, "7.00", "37.50", "2.63", "40.13"),
        ("0.05", 1, "10.00", "0.05", "0.01", "0.06"),  # 0.005 -> 0.01 (half up, not to even)
        ("0.15", 1, "10.00", "0.15", "0.02", "0.17"),  # 0.015 -> 0.02
        ("19.99", 2, "19.00", "39.98", "7.60", "47.58"),  # 7.5962 -> 7.60
        ("9.99", 1, "0.00", "9.99", "0.00", "9.99"),
        ("3.33", 3, "100.00", "9.99", "9.99", "19.98"),
        ("0.01", 10_000, "5.50", "100.00", "5.50", "105.50"),
    ],
)
def test_a_lines_vat_is_rounded_to_the_cent_half_up(
    price: str, quantity: int, rate: str, net: str, vat: str, total: str
) -> None:
    amounts = line_amounts(Decimal(price), quantity, Decimal(rate))
    assert (amounts.net, amounts.vat, amounts.total) == (Decimal(net), Decimal(vat), Decimal(total))


money_values = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)
rates = st.decimals(min_value=0, max_value=100, places=2)


@given(
    st.lists(
        st.tuples(money_values, st.integers(1, MAX_LINE_QUANTITY), rates), min_size=1, max_size=20
    )
)
def test_an_orders_totals_are_exactly_the_sums_of_its_lines(
    specs: list[tuple[Decimal, int, Decimal]],
) -> None:
    lines = [line(i, str(price), qty, vat=str(rate)) for i, (price, qty, rate) in enumerate(specs)]
    order = Order(customer_id=1, created_at=NOW, currency="EUR", lines=lines)
    amounts = order.amounts
    assert amounts.total == amounts.net + amounts.vat  # total = subtotal + vat_total
    assert amounts.net == sum((ln.amounts.net for ln in lines), Decimal(0))
    assert amounts.vat == sum((ln.amounts.vat for ln in lines), Decimal(0))
    assert amounts.total == sum((ln.amounts.total for ln in lines), Decimal(0))
    for ln in lines:
        exact = ln.unit_price * ln.quantity * ln.vat_rate / 100
        assert abs(ln.amounts.vat - exact) <= Decimal("0.005")  # rounded to the nearest cent
        assert ln.amounts.vat.as_tuple().exponent == -2
    assert order.total.as_tuple().exponent == -2


# --- Product details -----------------------------------------------------------------------------


@pytest.mark.parametrize("sku", ["OAT-FL-25", "a", "x" * 64, "A.B_C-1", "P-X12", "PX-000001"])
def test_a_valid_sku_is_kept(sku: str) -> None:
    assert Product(name="Oat", price=Decimal("1.00"), sku=sku).sku == sku


@pytest.mark.parametrize("sku", ["", "x" * 65, "has space", "ü", "semi;colon", "OAT/25"])
def test_a_bad_sku_is_refused(sku: str) -> None:
    with pytest.raises(InvalidSku):
        Product(name="Oat", price=Decimal("1.00"), sku=sku)


def test_the_form_of_generated_skus_is_kept_for_them() -> None:
    with pytest.raises(InvalidSku, match="P-<digits>"):
        Product(name="Oat", price=Decimal("1.00"), sku="P-000009")
    p = product(7)
    assert p.sku == "P-000007"  # a product with an id and no SKU: its generated one
    p.update(sku="OAT-7")
    p.update(sku="p-000007")  # its own generated SKU back, in any case, is fine
    with pytest.raises(InvalidSku):
        p.update(sku="P-000008")


def test_sku_defaults_pad_the_id_to_six_digits_and_no_more() -> None:
    assert [default_sku(i) for i in (7, 123456, 1234567)] == [
        "P-000007",
        "P-123456",
        "P-1234567",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("unit", ""),
        ("unit", "   "),
        ("unit", "x" * 33),
        ("description", "x" * 2001),
        ("vat_rate", Decimal("-0.01")),
        ("vat_rate", Decimal("100.01")),
        ("vat_rate", Decimal("7.001")),
        ("vat_rate", Decimal("NaN")),
    ],
)
def test_a_unit_description_or_vat_rate_out_of_bounds_is_refused(field: str, value: object) -> None:
    p = product(1)
    with pytest.raises(InvalidProductField):
        p.update(**{field: value})
    assert (p.unit, p.description, p.vat_rate) == ("unit", "", ZERO)


def test_product_defaults() -> None:
    p = Product(name="Oat", price=Decimal("1.00"))
    assert (p.sku, p.unit, p.description, p.vat_rate, p.quantity_in_stock) == (
        None,
        "unit",
        "",
        ZERO,
        0,
    )


# --- Cancelling an order -------------------------------------------------------------------------


def test_cancelling_an_order_puts_its_units_back() -> None:
    products = catalogue(product(1, stock=5), product(2, stock=3))
    order = place(products, (1, 2), (2, 3))
    order.cancel(products, LATER)
    assert order.status is OrderStatus.CANCELLED
    assert order.cancelled_at == LATER
    assert products[1].quantity_in_stock == 5
    assert products[2].quantity_in_stock == 3


def test_cancelling_an_order_twice_is_refused_and_restocks_only_once() -> None:
    products = catalogue(product(1, stock=5))
    order = place(products, (1, 2))
    order.id = 31
    order.cancel(products, LATER)
    with pytest.raises(OrderNotCancellable) as caught:
        order.cancel(products, LATER)
    assert caught.value.order_id == 31
    assert caught.value.order_status == "cancelled"
    assert products[1].quantity_in_stock == 5


# --- The order's life ----------------------------------------------------------------------------


def test_an_order_is_shipped_then_delivered_with_the_moment_of_each() -> None:
    products = catalogue(product(1, stock=5))
    order = place(products, (1, 2))
    assert (order.status, order.shipped_at, order.delivered_at) == (OrderStatus.PLACED, None, None)
    assert order.invoice_number is None
    order.ship(LATER, invoice_number="INV-2026-000001")
    assert order.invoice_number == "INV-2026-000001"
    order.deliver(LATEST)
    assert (order.status, order.shipped_at, order.delivered_at, order.cancelled_at) == (
        OrderStatus.DELIVERED,
        LATER,
        LATEST,
        None,
    )
    assert products[1].quantity_in_stock == 3  # stock moves only when placed or cancelled


@pytest.mark.parametrize(
    ("path", "move", "error"),
    [
        ([], "deliver", InvalidStatusTransition),
        (["ship"], "ship", InvalidStatusTransition),
        (["ship"], "cancel", OrderNotCancellable),
        (["ship", "deliver"], "cancel", OrderNotCancellable),
        (["ship", "deliver"], "ship", InvalidStatusTransition),
        (["ship", "deliver"], "deliver", InvalidStatusTransition),
        (["cancel"], "ship", InvalidStatusTransition),
        (["cancel"], "deliver", InvalidStatusTransition),
        (["cancel"], "cancel", OrderNotCancellable),
    ],
)
def test_a_move_the_orders_life_does_not_allow_is_refused_and_changes_nothing(
    path: list[str], move: str, error: type[Exception]
) -> None:
    products = catalogue(product(1, stock=5))
    order = place(products, (1, 2))
    order.id = 9
    for step in path:
        _do(order, step, products)
    before = (order.status, order.shipped_at, order.delivered_at, order.cancelled_at)
    stock = products[1].quantity_in_stock
    with pytest.raises(error):
        _do(order, move, products)
    assert (order.status, order.shipped_at, order.delivered_at, order.cancelled_at) == before
    assert products[1].quantity_in_stock == stock


def _do(order: Order, move: str, products: dict[int, Product]) -> None:
    if move == "cancel":
        order.cancel(products, LATEST)
    elif move == "ship":
        order.ship(LATEST, invoice_number="INV-2026-000001")
    else:
        order.deliver(LATEST)


def test_the_allowed_moves_are_the_contracts() -> None:
    allowed = {(a.value, b.value) for a, targets in MOVES.items() for b in targets}
    assert allowed == {("placed", "shipped"), ("shipped", "delivered"), ("placed", "cancelled")}
