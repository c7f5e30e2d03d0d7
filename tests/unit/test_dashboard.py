"""The dashboard's and the export's use cases on the in-memory store: the shop's days in its
time zone (clock changes included), zeros for quiet days, and the export's range rules."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from opply.adapters.memory import FixedClock, InMemoryStore, InMemoryUnitOfWork
from opply.application.dashboard import (
    MAX_EXPORT_DAYS,
    SALES_DAYS,
    ExportOrders,
    ExportQuery,
    ShowDashboard,
    day_starts,
    start_of_day,
)
from opply.domain.errors import InvalidDateRange
from opply.domain.model import Order, OrderLine, OrderStatus, Product, User

BERLIN = ZoneInfo("Europe/Berlin")


def hours(bounds: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(bounds)]


def test_a_day_of_a_clock_change_is_23_or_25_hours_long() -> None:
    spring = day_starts(date(2026, 3, 28), 3, BERLIN)
    autumn = day_starts(date(2026, 10, 24), 3, BERLIN)
    assert hours(spring) == [24, 23, 24]
    assert hours(autumn) == [24, 25, 24]
    assert spring[0] == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)
    assert spring[2] == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


def test_a_day_whose_midnight_is_skipped_starts_at_the_clock_change() -> None:
    # Chile moves its clocks from 24:00 on Saturday to 01:00 on Sunday: no Sunday 00:00.
    santiago = ZoneInfo("America/Santiago")
    assert start_of_day(date(2026, 9, 6), santiago) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert hours(day_starts(date(2026, 9, 5), 2, santiago)) == [24, 23]


def _store_with_orders(*placed: tuple[datetime, OrderStatus, str]) -> InMemoryUnitOfWork:
    uow = InMemoryUnitOfWork(InMemoryStore())
    with uow.write() as tx:
        buyer = User(username="buyer", password_hash="x")
        tx.users.add(buyer)
        product = Product(name="Oat", price=Decimal("10.00"), quantity_in_stock=4)
        tx.products.add(product)
        assert buyer.id is not None
        assert product.id is not None
        for at, status, price in placed:
            line = OrderLine(
                product_id=product.id,
                sku="OAT",
                product_name="Oat",
                unit="bag",
                unit_price=Decimal(price),
                vat_rate=Decimal("7.00"),
                quantity=1,
            )
            tx.orders.add(
                Order(
                    customer_id=buyer.id,
                    created_at=at,
                    currency="EUR",
                    lines=[line],
                    status=status,
                )
            )
        tx.commit()
    return uow


def test_the_sales_are_the_shops_last_30_days_with_zeros_and_without_cancelled_orders() -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    uow = _store_with_orders(
        # 23:30 UTC on 1 December is 00:30 on 2 December in Berlin: today there.
        (datetime(2026, 12, 1, 23, 30, tzinfo=UTC), OrderStatus.PLACED, "10.00"),
        (datetime(2026, 12, 1, 22, 30, tzinfo=UTC), OrderStatus.DELIVERED, "20.00"),
        (datetime(2026, 12, 1, 12, 0, tzinfo=UTC), OrderStatus.CANCELLED, "40.00"),
        # The first of the 30 days starts at 23:00 UTC on 2 November.
        (datetime(2026, 11, 2, 23, 0, tzinfo=UTC), OrderStatus.SHIPPED, "1.00"),
        (datetime(2026, 11, 2, 22, 59, tzinfo=UTC), OrderStatus.SHIPPED, "2.00"),
    )
    board = ShowDashboard(uow, FixedClock(now), "Europe/Berlin", 3)()

    assert len(board.sales) == SALES_DAYS
    assert [d.day for d in board.sales][0::29] == [date(2026, 11, 3), date(2026, 12, 2)]
    by_day = {d.day: (d.orders, d.net, d.vat, d.total) for d in board.sales if d.orders}
    assert by_day == {
        date(2026, 11, 3): (1, Decimal("1.00"), Decimal("0.07"), Decimal("1.07")),
        date(2026, 12, 1): (1, Decimal("20.00"), Decimal("1.40"), Decimal("21.40")),
        date(2026, 12, 2): (1, Decimal("10.00"), Decimal("0.70"), Decimal("10.70")),
    }
    quiet = [d for d in board.sales if not d.orders]
    assert len(quiet) == 27
    assert {(d.net, d.vat, d.total) for d in quiet} == {(Decimal(0), Decimal(0), Decimal(0))}
    assert board.time_zone == "Europe/Berlin"
    assert board.as_of == now
    assert [o.total for o in board.to_ship.orders] == [Decimal("10.70")]
    assert [p.name for p in board.running_low.items] == []
    assert board.low_stock_threshold == 3


def test_an_export_range_backwards_or_longer_than_a_year_is_refused_before_any_read() -> None:
    export = ExportOrders(_store_with_orders(), FixedClock(), "UTC")
    first = date(2026, 1, 1)
    with pytest.raises(InvalidDateRange, match="after the last"):
        export(ExportQuery(first_day=first, last_day=first - timedelta(days=1)))
    with pytest.raises(InvalidDateRange, match=f"At most {MAX_EXPORT_DAYS} days"):
        export(ExportQuery(first_day=first, last_day=first + timedelta(days=MAX_EXPORT_DAYS)))
    longest = export(
        ExportQuery(first_day=first, last_day=first + timedelta(days=MAX_EXPORT_DAYS - 1))
    )
    assert list(longest) == []


def test_the_export_takes_whole_days_of_the_shops_time_zone() -> None:
    uow = _store_with_orders(
        (datetime(2026, 11, 30, 22, 59, tzinfo=UTC), OrderStatus.PLACED, "1.00"),  # 30 Nov
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), OrderStatus.PLACED, "2.00"),  # 1 Dec
        (datetime(2026, 12, 1, 22, 59, tzinfo=UTC), OrderStatus.SHIPPED, "3.00"),  # 1 Dec
        (datetime(2026, 12, 1, 23, 0, tzinfo=UTC), OrderStatus.PLACED, "4.00"),  # 2 Dec
    )
    export = ExportOrders(uow, FixedClock(), "Europe/Berlin")
    december_first = date(2026, 12, 1)
    rows = list(export(ExportQuery(first_day=december_first, last_day=december_first)))
    assert [r.unit_price for r in rows] == [Decimal("2.00"), Decimal("3.00")]
    shipped = export(
        ExportQuery(first_day=december_first, last_day=december_first, status=OrderStatus.SHIPPED)
    )
    assert [r.unit_price for r in shipped] == [Decimal("3.00")]


def test_an_export_offers_this_month_so_far_first() -> None:
    clock = FixedClock(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 1 December in Berlin
    query = ExportOrders(_store_with_orders(), clock, "Europe/Berlin").this_month()
    assert (query.first_day, query.last_day, query.status) == (
        date(2026, 12, 1),
        date(2026, 12, 1),
        None,
    )
