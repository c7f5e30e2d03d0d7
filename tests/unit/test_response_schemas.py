"""The response schemas' direct path gives exactly what marshmallow's field machinery gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opply.application.dto import OrderLineView, OrderView, ProductView
from opply.entrypoints.api.schemas import (
    OrderPageSchema,
    OrderSchema,
    ProductPageSchema,
    ProductSchema,
    ViewSchema,
)

prices = st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2)
products = st.builds(
    ProductView,
    id=st.integers(1, 2**31 - 1),
    name=st.text(min_size=1, max_size=200),
    price=prices,
    quantity_in_stock=st.integers(0, 2_000_000_000),
)
lines = st.builds(
    lambda pid, name, price, qty: OrderLineView(pid, name, price, qty, price * qty),
    st.integers(1, 2**31 - 1),
    st.text(min_size=1, max_size=200),
    prices,
    st.integers(1, 10_000),
)
orders = st.builds(
    OrderView,
    id=st.integers(1, 2**31 - 1),
    status=st.sampled_from(["placed", "cancelled"]),
    created_at=st.datetimes(timezones=st.just(UTC)),
    currency=st.just("EUR"),
    lines=st.lists(lines, min_size=1, max_size=5).map(tuple),
    total=prices,
)


def _marshmallow(schema: ViewSchema, obj: Any, many: bool = False) -> Any:
    """The same schema dumped by marshmallow's own machinery."""
    return ma.Schema.dump(schema, obj, many=many)


@given(products)
def test_a_product_is_written_the_same_by_both_paths(product: ProductView) -> None:
    assert ProductSchema().dump(product) == _marshmallow(ProductSchema(), product)


@given(orders)
def test_an_order_is_written_the_same_by_both_paths(order: OrderView) -> None:
    assert OrderSchema().dump(order) == _marshmallow(OrderSchema(), order)


@given(st.lists(products, max_size=5), st.integers(0, 1000))
def test_a_page_is_written_the_same_by_both_paths(items: list[ProductView], count: int) -> None:
    page = {"count": count, "next": "http://x/?page=2", "previous": None, "results": items}
    assert ProductPageSchema().dump(page) == _marshmallow(ProductPageSchema(), page)


def test_an_order_page_matches_too() -> None:
    order = OrderView(
        31,
        "placed",
        datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        "EUR",
        (OrderLineView(7, "Oat flour 25kg", Decimal("12.50"), 2, Decimal("25.00")),),
        Decimal("25.00"),
    )
    page = {"count": 1, "next": None, "previous": None, "results": [order]}
    dumped = OrderPageSchema().dump(page)
    assert dumped == _marshmallow(OrderPageSchema(), page)
    assert dumped["results"][0]["created_at"] == "2026-11-24T10:15:00+00:00"
    assert dumped["results"][0]["lines"][0]["line_total"] == "25.00"


@pytest.mark.parametrize(
    "obj", [{"id": 1, "name": "x", "price": Decimal("1.5"), "quantity_in_stock": 2}]
)
def test_anything_else_still_goes_through_marshmallow(obj: dict[str, Any]) -> None:
    assert ProductSchema().dump(obj)["price"] == "1.50"
