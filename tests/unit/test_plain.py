"""Views kept as plain data read back exactly, whatever their values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from opply.application.dto import CustomerView, OrderView, order_line_view, order_view
from opply.application.plain import from_plain, to_plain
from opply.domain.model import DELIVERY_FIELDS, MAX_LINE_QUANTITY, DeliveryAddress, OrderStatus

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
cents = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)
lines = st.builds(
    order_line_view,
    product_id=st.integers(1, 2**31 - 1),
    sku=st.text(min_size=1, max_size=64),
    product_name=st.text(min_size=1, max_size=200),
    unit=st.text(min_size=1, max_size=32),
    unit_price=cents,
    vat_rate=st.decimals(min_value=0, max_value=100, places=2),
    quantity=st.integers(1, MAX_LINE_QUANTITY),
)
orders = st.builds(
    order_view,
    id=st.integers(1, 2**31 - 1),
    status=st.sampled_from(OrderStatus),
    created_at=moments,
    shipped_at=st.none() | moments,
    delivered_at=st.none() | moments,
    cancelled_at=st.none() | moments,
    currency=st.just("EUR"),
    lines=st.lists(lines, min_size=1, max_size=5, unique_by=lambda line: line.product_id),
    customer=st.none() | st.builds(CustomerView, id=st.integers(1, 100), username=st.text()),
    delivery_address=st.none()
    | st.builds(DeliveryAddress, **dict.fromkeys(DELIVERY_FIELDS, st.text())),
    invoice_number=st.none() | st.just("INV-2026-000042"),
)


@given(orders)
def test_an_order_view_kept_as_json_reads_back_equal(view: OrderView) -> None:
    kept = json.loads(json.dumps(to_plain(view)))
    assert from_plain(OrderView, kept) == view


def test_utc_moments_are_kept_with_a_z_as_the_api_writes_them() -> None:
    view = order_view(
        id=1,
        status=OrderStatus.PLACED,
        created_at=datetime(2026, 12, 2, 10, 15, tzinfo=UTC),
        shipped_at=None,
        delivered_at=None,
        cancelled_at=None,
        currency="EUR",
        lines=[],
        customer=None,
        delivery_address=None,
        invoice_number=None,
    )
    assert to_plain(view)["created_at"] == "2026-12-02T10:15:00Z"
