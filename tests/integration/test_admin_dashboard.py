"""The admin's dashboard and the orders export as CSV, through Flask's test client, on SQLite and
PostgreSQL, with the clock fixed."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dependency_injector import providers
from flask.testing import FlaskClient
from sqlalchemy import Connection, insert
from werkzeug.test import TestResponse

from opply.adapters.memory import FixedClock
from opply.adapters.orm import order_events, webhook_deliveries, webhook_endpoints
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.domain.model import DeliveryAddress, Order, OrderStatus
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container
from tests.integration.contract import add_products, add_user, order_line
from tests.integration.test_admin import admin_login, post, text

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
ADDRESS = DeliveryAddress(
    recipient="Ann Baker",
    company="",
    line1="1 Main Street",
    line2="",
    postal_code="10115",
    city="Berlin",
    country="DE",
    phone="",
)


@pytest.fixture
def container(database: Database, uow: SqlUnitOfWork) -> Container:
    """The app's container with the clock stopped at NOW (before the app is wired)."""
    built = build_test_container(database, uow)
    built.clock.override(providers.Object(FixedClock(NOW)))
    return built


@pytest.fixture
def staff(client: FlaskClient, container: Container) -> FlaskClient:
    user = f.user(container, staff=True)
    assert admin_login(client, user.username).status_code == 303
    return client


def add_order(
    uow: SqlUnitOfWork,
    customer_id: int,
    *lines: tuple[int, int, str, str],
    ago: timedelta,
    status: OrderStatus = OrderStatus.PLACED,
    city: str | None = None,
    invoice_number: str | None = None,
) -> int:
    """An order placed ``ago`` before NOW, of (product, quantity, price, VAT rate) lines, to
    ``city`` if given; shipped then with ``invoice_number`` if given."""
    order = Order(
        customer_id=customer_id,
        created_at=NOW - ago,
        currency="EUR",
        lines=[order_line(p, q, price=price, vat=vat) for p, q, price, vat in lines],
        status=status,
        delivery_address=None if city is None else replace(ADDRESS, city=city),
    )
    with uow.write() as tx:
        tx.orders.add(order)
        tx.commit()
    assert order.id is not None
    if invoice_number is not None:
        with uow.write() as tx:
            placed = tx.orders.get_for_update(order.id)
            assert placed is not None
            placed.ship(NOW, invoice_number=invoice_number)
            tx.commit()
    return order.id


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.DOTALL)
    assert match, f"no section {section_id}"
    return match.group(0)


# --- the dashboard ------------------------------------------------------------------------------


def test_to_ship_lists_the_oldest_placed_orders_with_age_customer_total_and_a_link(
    staff: FlaskClient, uow: SqlUnitOfWork
) -> None:
    buyer = add_user(uow, "dash-buyer")
    a, b = add_products(uow, ("Oat", 50), ("Rye", 50))
    old = add_order(
        uow, buyer, (a, 3, "12.50", "7.00"), ago=timedelta(days=3, hours=2), city="Lyon <3>"
    )
    new = add_order(uow, buyer, (b, 1, "1.25", "10.00"), ago=timedelta(minutes=25))
    add_order(uow, buyer, (a, 1, "5.00", "0.00"), ago=timedelta(days=5), status=OrderStatus.SHIPPED)

    html = text(staff.get("/admin/"))
    panel = section(html, "to-ship")
    rows = re.findall(r"<tr>.*?</tr>", panel, re.DOTALL)[1:]
    assert len(rows) == 2
    assert f'href="/admin/orders/{old}/"' in rows[0]
    assert "3 days" in rows[0]
    assert "dash-buyer" in rows[0]
    assert "40.13 EUR" in rows[0]
    assert "<td>Lyon &lt;3&gt;</td>" in rows[0]  # the city it goes to, escaped
    assert "—" in rows[1]  # placed without an address
    assert "Lyon" not in rows[1]
    assert f'href="/admin/orders/{new}/"' in rows[1]
    assert "25 min" in rows[1]
    assert "1.38 EUR" in rows[1]  # 1.25 + 0.125 rounded half up
    assert '<span class="count">2</span>' in panel
    assert "more placed order" not in panel


def test_to_ship_shows_fifty_and_says_how_many_more_wait(
    staff: FlaskClient, uow: SqlUnitOfWork
) -> None:
    buyer = add_user(uow)
    [a] = add_products(uow, ("Oat", 50))
    for n in range(53):
        add_order(uow, buyer, (a, 1, "1.00", "0.00"), ago=timedelta(minutes=n))
    panel = section(text(staff.get("/admin/")), "to-ship")
    assert len(re.findall(r'href="/admin/orders/[0-9]+/"', panel)) == 50
    assert "3 more placed orders" in panel
    assert 'href="/admin/orders/?status=placed"' in panel


def test_running_low_lists_products_at_or_below_the_threshold_each_with_a_restock_form(
    staff: FlaskClient, uow: SqlUnitOfWork
) -> None:
    plenty, ten, none = (
        f.product(uow, name="Plenty", stock=11).id,
        f.product(uow, name="Ten left", stock=10).id,
        f.product(uow, name="Sold out", stock=0).id,
    )
    panel = section(text(staff.get("/admin/")), "running-low")
    assert panel.index("Sold out") < panel.index("Ten left")
    assert "Plenty" not in panel
    assert f'action="/admin/products/{none}/restock/"' in panel
    assert f'href="/admin/products/{ten}/"' in panel
    assert "10 or fewer in stock" in panel
    assert plenty

    page = post(staff, f"/admin/products/{none}/restock/", {"quantity": "20", "next": "/admin/"})
    assert "Added 20 to stock." in text(page)
    assert "Sold out" not in section(text(page), "running-low")


def test_the_sales_chart_has_a_bar_per_day_and_the_table_the_same_figures(
    staff: FlaskClient, uow: SqlUnitOfWork
) -> None:
    buyer = add_user(uow)
    [a] = add_products(uow, ("Oat", 50))
    add_order(uow, buyer, (a, 2, "10.00", "19.00"), ago=timedelta(hours=1))  # 23.80 today
    add_order(uow, buyer, (a, 1, "10.00", "19.00"), ago=timedelta(hours=2))  # 11.90 today
    add_order(
        uow, buyer, (a, 9, "10.00", "19.00"), ago=timedelta(hours=3), status=OrderStatus.CANCELLED
    )
    add_order(uow, buyer, (a, 1, "5.00", "7.00"), ago=timedelta(days=29))  # 5.35, the first day
    add_order(uow, buyer, (a, 1, "5.00", "7.00"), ago=timedelta(days=31))  # before the 30 days

    response = staff.get("/admin/")
    html = text(response)
    chart = re.search(r'<svg class="chart".*?</svg>', html, re.DOTALL)
    assert chart
    bars = re.findall(
        r'<rect class="bar"[^>]*height="([0-9.]+)"[^>]*><title>([^<]*)</title>', chart.group(0)
    )
    assert len(bars) == 30
    assert bars[-1][1] == f"{TODAY.isoformat()}: 2 orders, 35.70 EUR"
    assert bars[0][1] == f"{(TODAY - timedelta(days=29)).isoformat()}: 1 order, 5.35 EUR"
    assert [float(h) for h, _ in bars].count(0.0) == 28
    assert float(bars[-1][0]) > float(bars[0][0]) > 0

    rows = re.findall(r"<tr><td>([0-9-]+)</td>(.*?)</tr>", section(html, "sales"), re.DOTALL)
    assert len(rows) == 30
    assert rows[0][0] == TODAY.isoformat()
    assert re.findall(r">([0-9.]+)<", rows[0][1]) == ["2", "30.00", "5.70", "35.70"]
    assert "3 orders, 41.05 EUR including VAT" in html
    # Nothing the admin's CSP would block: no script, no inline style.
    assert "<script" not in html
    assert "style=" not in html
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_the_dashboard_links_the_export_of_its_30_days(staff: FlaskClient) -> None:
    html = text(staff.get("/admin/"))
    first = (TODAY - timedelta(days=29)).isoformat()
    assert f'href="/admin/orders.csv?from={first}&amp;to={TODAY.isoformat()}"' in html
    orders_page = text(staff.get("/admin/orders/"))
    assert 'action="/admin/orders.csv"' in orders_page
    assert 'name="from" value="2026-12-01"' in orders_page
    assert 'name="to" value="2026-12-02"' in orders_page


# --- orders as CSV ------------------------------------------------------------------------------


def csv_rows(response: TestResponse) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8"))))


def test_the_export_has_a_row_per_line_whose_sums_equal_the_orders_totals(
    staff: FlaskClient, uow: SqlUnitOfWork
) -> None:
    buyer = add_user(uow, "=HYPERLINK(evil)")
    a, b = add_products(uow, ("Oat", 50), ("Rye", 50))
    first = add_order(
        uow, buyer, (a, 3, "12.50", "7.00"), (b, 1, "1.25", "10.00"), ago=timedelta(days=1)
    )
    second = add_order(
        uow,
        buyer,
        (a, 1, "0.05", "10.00"),
        ago=timedelta(hours=1),
        invoice_number="INV-2026-000042",
    )
    add_order(uow, buyer, (a, 1, "9.99", "19.00"), ago=timedelta(days=40))  # outside

    response = staff.get(f"/admin/orders.csv?from=2026-11-01&to={TODAY}")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="orders-2026-11-01-to-{TODAY}.csv"'
    )
    header = response.get_data().decode("utf-8").splitlines()[0]
    assert header == (
        "order_id,placed_at,status,customer,invoice_number,sku,product,quantity,unit_price,"
        "vat_rate,net,vat,total,currency"
    )
    rows = csv_rows(response)
    assert [(int(r["order_id"]), r["status"]) for r in rows] == [
        (first, "placed"),
        (first, "placed"),
        (second, "shipped"),
    ]
    assert rows[0]["customer"] == "'=HYPERLINK(evil)"
    assert [r["invoice_number"] for r in rows] == ["", "", "INV-2026-000042"]
    assert rows[0]["placed_at"] == (NOW - timedelta(days=1)).isoformat()
    assert (rows[0]["net"], rows[0]["vat"], rows[0]["total"]) == ("37.50", "2.63", "40.13")
    assert (rows[2]["net"], rows[2]["vat"], rows[2]["total"]) == ("0.05", "0.01", "0.06")

    for order_id in (first, second):
        shown = text(staff.get(f"/admin/orders/{order_id}/"))
        mine = [r for r in rows if int(r["order_id"]) == order_id]
        for column, element in (("net", "subtotal"), ("vat", "vat-total"), ("total", "total")):
            found = re.search(rf'id="{element}">([0-9.]+)', shown)
            assert found
            assert sum(Decimal(r[column]) for r in mine) == Decimal(found.group(1))

    shipped = csv_rows(staff.get(f"/admin/orders.csv?from=2026-11-01&to={TODAY}&status=shipped"))
    assert [int(r["order_id"]) for r in shipped] == [second]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-12-01", "to: give a day as YYYY-MM-DD."),
        ("from=1.12.2026&to=2026-12-02", "&#39;1.12.2026&#39; is not a day written YYYY-MM-DD."),
        ("from=2026-02-30&to=2026-03-02", "&#39;2026-02-30&#39; is not a day of the calendar."),
        ("from=2026-12-02&to=2026-12-01", "The first day (2026-12-02) is after the last"),
        ("from=2025-01-01&to=2026-12-01", "At most 366 days can be exported at once, not 700"),
        ("from=2026-12-01&to=2026-12-02&status=lost", "status: must be one of placed"),
    ],
)
def test_a_bad_export_request_is_a_422_page_that_says_why(
    staff: FlaskClient, query: str, message: str
) -> None:
    response = staff.get(f"/admin/orders.csv?{query}")
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert message in text(response)


def test_only_staff_can_export(client: FlaskClient) -> None:
    response = client.get("/admin/orders.csv?from=2026-12-01&to=2026-12-02")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")


# --- integrations -------------------------------------------------------------------------------


def add_endpoint(connection: Connection, url: str, *, active: bool = True) -> int:
    row = {
        "url": url,
        "event_types": ["order.placed"],
        "description": "",
        "secret": "whsec_" + "A" * 44,
        "is_active": active,
        "created_at": NOW - timedelta(days=10),
    }
    return int(
        connection.execute(
            insert(webhook_endpoints).returning(webhook_endpoints.c.id), row
        ).scalar_one()
    )


def add_deliveries(connection: Connection, endpoint_id: int, event_id: int, *statuses: str) -> None:
    connection.execute(
        insert(webhook_deliveries),
        [
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id + n,
                "event_type": "order.placed",
                "status": status,
                "attempts": 1,
                "created_at": NOW - timedelta(hours=1),
            }
            for n, status in enumerate(statuses)
        ],
    )


def test_integrations_lists_endpoints_disabled_or_failing_each_linking_its_deliveries(
    staff: FlaskClient, uow: SqlUnitOfWork, connection: Connection
) -> None:
    buyer = add_user(uow)
    [a] = add_products(uow, ("Oat", 50))
    order_id = add_order(uow, buyer, (a, 1, "1.00", "0.00"), ago=timedelta(hours=2))
    events = [
        int(
            connection.execute(
                insert(order_events).returning(order_events.c.id),
                {
                    "tx_id": 0,
                    "type": "order.placed",
                    "order_id": order_id,
                    "customer_id": buyer,
                    "occurred_at": NOW,
                    "payload": {},
                },
            ).scalar_one()
        )
        for _ in range(3)
    ]
    assert events == list(range(events[0], events[0] + 3))
    healthy = add_endpoint(connection, "https://example.com/healthy")
    failing = add_endpoint(connection, "https://example.com/failing")
    off = add_endpoint(connection, "https://example.com/off", active=False)
    add_deliveries(connection, healthy, events[0], "delivered", "pending", "delivered")
    add_deliveries(connection, failing, events[0], "failed", "delivered", "failed")

    panel = section(text(staff.get("/admin/")), "integrations")

    rows = re.findall(r"<tr>.*?</tr>", panel, re.DOTALL)[1:]
    assert len(rows) == 2
    assert f'href="/admin/webhooks/{off}/#deliveries"' in rows[0]
    assert "disabled" in rows[0]
    assert f'href="/admin/webhooks/{failing}/#deliveries"' in rows[1]
    assert re.search(r'<td class="num warn">2</td>', rows[1])
    assert "healthy" not in panel
    assert '<span class="count">2</span>' in panel


def test_integrations_says_so_when_every_endpoint_is_healthy(staff: FlaskClient) -> None:
    panel = section(text(staff.get("/admin/")), "integrations")
    assert "Every webhook endpoint is enabled and nothing has failed." in panel
    assert '<span class="count">0</span>' in panel
