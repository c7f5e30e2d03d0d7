"""Contract tests of the dashboard's and the export's reads: the same answers in memory (the unit
tests' double), on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from opply.adapters.memory import InMemoryUnitOfWork
from opply.adapters.orm import orders
from opply.adapters.sql_writes import SqlWriteUnitOfWork
from opply.application.dto import ExportFilter, OrderToShip, Sales
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import DeliveryAddress, Order, OrderLine, OrderStatus
from tests.integration.contract import T0, add_order, add_products, add_user, order_line

DAY = timedelta(days=1)
ADDRESS = DeliveryAddress(
    recipient="Ann Baker",
    company="",
    line1="3 rue Mercière",
    line2="",
    postal_code="69002",
    city="Lyon",
    country="FR",
    phone="",
)


def add_lines_order(
    uow: UnitOfWork,
    customer_id: int,
    lines: list[OrderLine],
    *,
    at: timedelta = timedelta(0),
    status: OrderStatus = OrderStatus.PLACED,
    address: DeliveryAddress | None = None,
) -> int:
    order = Order(
        customer_id=customer_id,
        created_at=T0 + at,
        currency="EUR",
        lines=lines,
        status=status,
        delivery_address=address,
    )
    with uow.write() as tx:
        tx.orders.add(order)
        tx.commit()
    assert order.id is not None
    return order.id


# To ship -------------------------------------------------------------------------------------


def test_the_orders_to_ship_are_the_oldest_placed_ones_with_their_totals_and_how_many_wait(
    contract_uow: UnitOfWork,
) -> None:
    buyer = add_user(contract_uow, "to-ship-buyer")
    a, b = add_products(contract_uow, ("Oat", 5), ("Rye", 5))
    newest = add_order(contract_uow, buyer, a, at=T0 + timedelta(hours=3))
    oldest = add_lines_order(
        contract_uow,
        buyer,
        [order_line(a, 3, price="12.50", vat="7.00"), order_line(b, 1, price="1.25", vat="10.00")],
        at=timedelta(hours=1),
    )
    middle = add_order(contract_uow, buyer, b, at=T0 + timedelta(hours=2))
    add_order(contract_uow, buyer, a, at=T0, status=OrderStatus.SHIPPED)
    add_order(contract_uow, buyer, a, at=T0, status=OrderStatus.CANCELLED)

    with contract_uow.read() as reads:
        found = reads.orders_to_ship(limit=2)
        view = reads.order(oldest)
        everything = reads.orders_to_ship(limit=50)

    assert view is not None
    assert found.waiting == 3
    assert found.orders == [
        OrderToShip(
            id=oldest,
            created_at=T0 + timedelta(hours=1),
            customer="to-ship-buyer",
            delivery_city=None,  # placed without an address
            currency="EUR",
            subtotal=view.subtotal,
            vat_total=view.vat_total,
            total=view.total,
        ),
        found.orders[1],
    ]
    # 3 x 12.50 at 7% (2.625 -> 2.63) and 1.25 at 10% (0.125 -> 0.13): each line rounded half up.
    assert (view.subtotal, view.vat_total, view.total) == (
        Decimal("38.75"),
        Decimal("2.76"),
        Decimal("41.51"),
    )
    assert found.orders[1].id == middle
    assert [o.id for o in everything.orders] == [oldest, middle, newest]
    assert everything.waiting == 3


def written_by_the_release_before(uow: UnitOfWork, *order_ids: int) -> None:
    """The orders' stored totals gone (NULL), as on the rows an instance of the release before
    migration 0008 inserts during a rolling deploy."""
    if isinstance(uow, InMemoryUnitOfWork):
        with uow.store.lock:
            for order_id in order_ids:
                del uow.store.tables.order_totals[order_id]
        return
    with uow.write() as tx:
        assert isinstance(tx, SqlWriteUnitOfWork)
        tx.session.execute(
            update(orders).where(orders.c.id.in_(order_ids)).values(subtotal=None, vat_total=None)
        )
        tx.commit()


def test_an_order_to_ship_shows_the_city_it_goes_to(contract_uow: UnitOfWork) -> None:
    buyer = add_user(contract_uow)
    [a] = add_products(contract_uow, ("Oat", 5))
    goes = add_lines_order(contract_uow, buyer, [order_line(a, 1)], address=ADDRESS)
    nowhere = add_lines_order(contract_uow, buyer, [order_line(a, 1)], at=timedelta(hours=1))

    with contract_uow.read() as reads:
        found = reads.orders_to_ship(limit=50)

    assert [(o.id, o.delivery_city) for o in found.orders] == [(goes, "Lyon"), (nowhere, None)]


def test_orders_without_stored_totals_ship_and_sell_with_their_lines_sums(
    contract_uow: UnitOfWork,
) -> None:
    """A row inserted by the release before 0008 has no subtotal and VAT total: the reads add
    up its lines, so the figures are the same whoever wrote the order."""
    buyer = add_user(contract_uow)
    a, b = add_products(contract_uow, ("Oat", 5), ("Rye", 5))
    lines = [
        order_line(a, 3, price="12.50", vat="7.00"),
        order_line(b, 1, price="1.25", vat="10.00"),
    ]
    new = add_lines_order(contract_uow, buyer, lines)
    old = add_lines_order(contract_uow, buyer, lines, at=timedelta(hours=1))
    with contract_uow.read() as reads:
        before_to_ship = reads.orders_to_ship(limit=50)
        [before_sales] = reads.sales([T0, T0 + DAY])

    written_by_the_release_before(contract_uow, old)

    with contract_uow.read() as reads:
        to_ship = reads.orders_to_ship(limit=50)
        [sales] = reads.sales([T0, T0 + DAY])
    assert [o.id for o in to_ship.orders] == [new, old]
    assert to_ship == before_to_ship
    assert [(o.subtotal, o.vat_total, o.total) for o in to_ship.orders] == 2 * [
        (Decimal("38.75"), Decimal("2.76"), Decimal("41.51"))
    ]
    assert sales == before_sales == Sales(orders=2, net=Decimal("77.50"), vat=Decimal("5.52"))


def test_an_order_at_the_domains_limits_keeps_its_totals(contract_uow: UnitOfWork) -> None:
    """An order may cost far more than one price may be: its stored totals still fit."""
    buyer = add_user(contract_uow)
    products = add_products(contract_uow, *((f"P{i}", 5) for i in range(3)))
    lines = [order_line(p, 10_000, price="9999999999.99", vat="100.00") for p in products]
    order_id = add_lines_order(contract_uow, buyer, lines)
    with contract_uow.read() as reads:
        [shown] = reads.orders_to_ship(limit=50).orders
        [day] = reads.sales([T0, T0 + DAY])
        view = reads.order(order_id)
    assert view is not None
    assert shown.subtotal == view.subtotal == Decimal("299999999999700.00")
    assert (shown.vat_total, shown.total) == (view.vat_total, view.total)
    assert (day.net, day.vat) == (view.subtotal, view.vat_total)


def test_with_nothing_placed_there_is_nothing_to_ship(contract_uow: UnitOfWork) -> None:
    buyer = add_user(contract_uow)
    [a] = add_products(contract_uow, ("Oat", 5))
    add_order(contract_uow, buyer, a, status=OrderStatus.DELIVERED)
    with contract_uow.read() as reads:
        found = reads.orders_to_ship(limit=50)
    assert (list(found.orders), found.waiting) == ([], 0)


# Running low ---------------------------------------------------------------------------------


def test_products_running_low_are_those_at_or_below_the_threshold_lowest_stock_first(
    contract_uow: UnitOfWork,
) -> None:
    ids = add_products(
        contract_uow, ("Ten", 10), ("Eleven", 11), ("Three", 3), ("None", 0), ("Three too", 3)
    )
    ten, _, three, none, three_too = ids
    with contract_uow.read() as reads:
        low = reads.products_running_low(threshold=10, limit=50)
        first_two = reads.products_running_low(threshold=10, limit=2)
        zero = reads.products_running_low(threshold=0, limit=50)
        nothing = reads.products_running_low(threshold=-1, limit=50)

    assert [p.id for p in low.items] == [none, three, three_too, ten]
    assert low.total == 4
    assert [p.quantity_in_stock for p in low.items] == [0, 3, 3, 10]
    assert [p.id for p in first_two.items] == [none, three]
    assert first_two.total == 4
    assert ([p.id for p in zero.items], zero.total) == ([none], 1)
    assert (list(nothing.items), nothing.total) == ([], 0)


# Sales ---------------------------------------------------------------------------------------


def test_sales_are_summed_per_stretch_with_zeros_and_without_cancelled_orders(
    contract_uow: UnitOfWork,
) -> None:
    buyer = add_user(contract_uow)
    [a] = add_products(contract_uow, ("Oat", 5))
    line = [order_line(a, 2, price="10.00", vat="19.00")]  # 20.00 + 3.80
    add_lines_order(contract_uow, buyer, line)  # the first instant of stretch 0
    add_lines_order(contract_uow, buyer, line, at=timedelta(hours=23))
    add_lines_order(contract_uow, buyer, line, at=timedelta(hours=5), status=OrderStatus.CANCELLED)
    add_lines_order(contract_uow, buyer, line, at=DAY * 2, status=OrderStatus.DELIVERED)
    add_lines_order(contract_uow, buyer, line, at=-timedelta(microseconds=1))  # before
    add_lines_order(contract_uow, buyer, line, at=DAY * 3)  # the end is not in

    with contract_uow.read() as reads:
        found = reads.sales([T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY])

    assert found == [
        Sales(orders=2, net=Decimal("40.00"), vat=Decimal("7.60")),
        Sales(orders=0, net=Decimal("0.00"), vat=Decimal("0.00")),
        Sales(orders=1, net=Decimal("20.00"), vat=Decimal("3.80")),
    ]
    assert found[0].total == Decimal("47.60")


def test_sales_add_up_to_the_orders_totals_to_the_cent(contract_uow: UnitOfWork) -> None:
    """Each line's VAT is rounded half up on its own, in SQL as in the domain: the day's sums
    equal the sums of the orders' own totals, whatever the prices, quantities and rates."""
    buyer = add_user(contract_uow)
    products = add_products(contract_uow, *((f"P{i}", 5) for i in range(4)))
    prices = ["0.05", "1.25", "2.50", "12.50", "0.99", "1999.99"]
    rates = ["0.00", "7.00", "10.00", "19.00", "5.50", "2.10"]
    shapes = itertools.product(prices, rates, [1, 3, 7])
    ids = []
    for n, (price, rate, quantity) in enumerate(shapes):
        lines = [
            order_line(products[k], quantity + k, price=price, vat=rates[(n + k) % len(rates)])
            for k in range(n % 3)
        ] + [order_line(products[3], quantity, price=price, vat=rate)]
        ids.append(add_lines_order(contract_uow, buyer, lines, at=timedelta(minutes=n)))

    with contract_uow.read() as reads:
        [day] = reads.sales([T0, T0 + DAY])
        views = [reads.order(i) for i in ids]

    assert day.orders == len(ids)
    assert day.net == sum(v.subtotal for v in views if v)
    assert day.vat == sum(v.vat_total for v in views if v)
    assert day.total == sum(v.total for v in views if v)


# The export ----------------------------------------------------------------------------------


def test_the_export_gives_every_line_of_the_orders_in_the_range_oldest_first(
    contract_uow: UnitOfWork,
) -> None:
    buyer = add_user(contract_uow, "export-buyer")
    a, b = add_products(contract_uow, ("Oat", 5), ("Rye", 5))
    second = add_lines_order(
        contract_uow,
        buyer,
        [order_line(b, 1, price="1.25", vat="10.00"), order_line(a, 3, vat="7.00")],
        at=timedelta(hours=2),
    )
    first = add_lines_order(contract_uow, buyer, [order_line(a, 1)], at=timedelta(hours=1))
    with contract_uow.write() as tx:
        shipped_one = tx.orders.get_for_update(first)
        assert shipped_one is not None
        shipped_one.ship(T0 + timedelta(hours=3), invoice_number="INV-2026-000007")
        tx.commit()
    add_lines_order(contract_uow, buyer, [order_line(a, 1)], at=DAY)  # after the range
    add_lines_order(contract_uow, buyer, [order_line(a, 1)], at=-DAY)  # before it

    with contract_uow.read() as reads:
        rows = list(reads.order_lines_export(ExportFilter(start=T0, end=T0 + DAY), chunk=2))
        shipped = list(
            reads.order_lines_export(
                ExportFilter(start=T0, end=T0 + DAY, status=OrderStatus.SHIPPED), chunk=2
            )
        )
        views = {i: reads.order(i) for i in (first, second)}

    assert [(r.order_id, r.sku) for r in rows] == [
        (first, f"P-{a:06d}"),
        (second, f"P-{a:06d}"),
        (second, f"P-{b:06d}"),
    ]
    assert [r.order_id for r in shipped] == [first]
    assert [r.invoice_number for r in rows] == ["INV-2026-000007", None, None]
    row = rows[1]
    assert (row.created_at, row.status, row.customer, row.currency) == (
        T0 + timedelta(hours=2),
        OrderStatus.PLACED,
        "export-buyer",
        "EUR",
    )
    assert (row.product_name, row.quantity, row.unit_price, row.vat_rate) == (
        f"Product {a} then",
        3,
        Decimal("12.50"),
        Decimal("7.00"),
    )
    assert (row.line_net, row.line_vat, row.line_total) == (
        Decimal("37.50"),
        Decimal("2.63"),
        Decimal("40.13"),
    )
    for order_id, view in views.items():
        assert view is not None
        mine = [r for r in rows if r.order_id == order_id]
        assert sum(r.line_total for r in mine) == view.total
        assert sum(r.line_vat for r in mine) == view.vat_total
