"""The admin site in a real headless browser (Debian's chromium, driven by Playwright).

The app is served by a real WSGI server on a free loopback port, over a migrated SQLite file,
and the browser does what a staff member does: log in, create a product, restock it, see the
new stock in the API's product list, log out. A screenshot is kept in ``artifacts/`` (ignored by
git). ``.ci/run`` installs chromium; without ``/usr/bin/chromium`` this test is skipped.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from opply.adapters.database import make_engine
from opply.adapters.migrations import runner
from opply.application.dto import NewProduct, NewUser, NewWebhookEndpoint, PlaceOrderCommand
from opply.application.webhooks import DeliveryPolicy, SendOutcome
from opply.domain.model import LineRequest, Order, OrderLine, OrderStatus
from opply.entrypoints.app import create_app
from opply.entrypoints.container import Container
from tests.integration.conftest import Database, build_test_container, make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STAFF_PASSWORD = "browser-staff-pass-2026"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="admin browser test skipped: /usr/bin/chromium is missing "
        "(apt-get install chromium; .ci/run installs it)",
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    """The whole app on a real server and a migrated SQLite file; yields its base URL and
    its container (for data a test writes behind the app's back)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'opply.sqlite3'}"
    engine = make_engine(url)
    runner.upgrade(engine)
    database = Database(name="sqlite", url=url, engine=engine, read_engine=engine)
    container = build_test_container(database)
    container.create_user()(NewUser(username="shopkeeper", password=STAFF_PASSWORD, is_staff=True))
    container.create_user()(NewUser(username="buyer", password=STAFF_PASSWORD))
    app = create_app(make_settings(database), container=container)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", container
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        engine.dispose()


@pytest.fixture(scope="module")
def live_server(live: tuple[str, Container]) -> str:
    return live[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def test_staff_log_in_create_and_restock_a_product_and_the_api_shows_the_new_stock(
    live_server: str, page: Page
) -> None:
    page.goto(f"{live_server}/admin/")
    expect(page.get_by_role("heading", name="Staff log in")).to_be_visible()

    page.get_by_label("Username").fill("shopkeeper")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Shop at a glance")).to_be_visible()

    page.get_by_role("link", name="Products", exact=True).click()
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Name").fill("Browser buckwheat 5kg")
    page.get_by_label("SKU").fill("BWT-BR-05")
    page.get_by_label("Description").fill("Hulled, untoasted")
    page.get_by_label("Unit").fill("bag")
    page.get_by_label("Price (net)").fill("6.80")
    page.get_by_label("VAT rate (%)").fill("7")
    page.get_by_label("Stock to start with").fill("3")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_role("status")).to_contain_text("created")
    expect(page.locator("#stock")).to_have_text("3")

    page.get_by_label("Add a delivery of").fill("7")
    page.get_by_role("button", name="Restock").click()
    expect(page.get_by_role("status")).to_contain_text("Added 7 to stock")
    expect(page.locator("#stock")).to_have_text("10")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-browser-restocked.png"), full_page=True)

    page.goto(f"{live_server}/api/v1/products/?search=buckwheat")
    listed = json.loads(page.locator("body").inner_text())
    assert [
        (p["sku"], p["name"], p["unit"], p["price"], p["vat_rate"], p["quantity_in_stock"])
        for p in listed["results"]
    ] == [("BWT-BR-05", "Browser buckwheat 5kg", "bag", "6.80", "7.00", 10)]

    page.goto(f"{live_server}/admin/products/?q=buckwheat")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are logged out")
    page.goto(f"{live_server}/admin/products/")
    expect(page.get_by_role("heading", name="Staff log in")).to_be_visible()


def _api(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def test_staff_ship_and_deliver_an_order_and_the_customer_sees_it(
    live_server: str, page: Page
) -> None:
    staff = _api(
        live_server, "POST", "/api/token/", {"username": "shopkeeper", "password": STAFF_PASSWORD}
    )["access"]
    product = _api(
        live_server,
        "POST",
        "/api/v1/products/",
        {"name": "Browser oats", "price": "12.50", "vat_rate": "7.00", "quantity_in_stock": 9},
        staff,
    )
    buyer = _api(
        live_server, "POST", "/api/token/", {"username": "buyer", "password": STAFF_PASSWORD}
    )["access"]
    order = _api(
        live_server,
        "POST",
        "/api/v1/orders/",
        {"lines": [{"product_id": product["id"], "quantity": 3}]},
        buyer,
    )

    page.goto(f"{live_server}/admin/login/")
    page.get_by_label("Username").fill("shopkeeper")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/admin/orders/{order['id']}/")
    expect(page.locator("#status")).to_have_text("placed")
    expect(page.locator("#vat-total")).to_have_text("2.63")
    expect(page.locator("#total")).to_have_text("40.13 EUR")
    page.get_by_role("button", name="Mark as shipped").click()
    expect(page.get_by_role("status")).to_contain_text("shipped")
    expect(page.locator("#status")).to_have_text("shipped")
    expect(page.get_by_role("button", name="Cancel order and restock")).to_have_count(0)
    page.get_by_role("button", name="Mark as delivered").click()
    expect(page.locator("#status")).to_have_text("delivered")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-browser-delivered.png"), full_page=True)

    seen = _api(live_server, "GET", f"/api/v1/orders/{order['id']}/", token=buyer)
    assert seen["status"] == "delivered"
    assert seen["shipped_at"] is not None
    assert seen["delivered_at"] is not None


def test_the_dashboard_shows_what_to_ship_what_runs_low_and_30_days_of_sales(
    live: tuple[str, Container], page: Page
) -> None:
    base, container = live
    uow = container.uow()
    now = datetime.now(UTC)
    [low, plenty] = [
        container.create_product()(
            NewProduct(name=name, price=Decimal(price), quantity_in_stock=stock, vat_rate=vat)
        )
        for name, price, stock, vat in (
            ("Dashboard spelt 1kg", "3.40", 2, Decimal("7.00")),
            ("Dashboard barley 5kg", "9.90", 500, Decimal("19.00")),
        )
    ]
    buyer = container.get_user()("buyer")
    # Orders over the last five weeks, a few a day, some shipped, one cancelled.
    for days_ago in range(35):
        for n in range(days_ago % 4):
            status = OrderStatus.PLACED if days_ago < 4 else OrderStatus.DELIVERED
            if (days_ago, n) == (6, 1):
                status = OrderStatus.CANCELLED
            order = Order(
                customer_id=buyer.id,
                created_at=now - timedelta(days=days_ago, hours=n),
                currency="EUR",
                status=status,
                lines=[
                    OrderLine(
                        product_id=p.id,
                        sku=p.sku,
                        product_name=p.name,
                        unit=p.unit,
                        unit_price=p.price,
                        vat_rate=p.vat_rate,
                        quantity=1 + (days_ago + n) % 5,
                    )
                    for p in (low, plenty)[: 1 + n % 2]
                ],
            )
            with uow.write() as tx:
                tx.orders.add(order)
                tx.commit()

    # One webhook endpoint disabled, one whose delivery of an order just placed failed.
    store = container.webhook_store()
    hooks = [
        store.add_endpoint(
            NewWebhookEndpoint(
                url=f"https://example.com/{name}",
                event_types=("order.placed",),
                description=f"Dashboard {name} hook",
                secret="whsec_" + "A" * 44,
                created_at=now,
            )
        ).id
        for name in ("switched-off", "failing")
    ]
    store.change_endpoint(hooks[0], {"is_active": False})
    line = LineRequest(product_id=plenty.id, quantity=1)
    container.place_order()(PlaceOrderCommand(customer_id=buyer.id, lines=[line]))
    while store.fan_out(now, 100):
        pass
    # Every order.placed since the endpoint was made (the module's other tests placed some).
    claimed = store.claim(now, timedelta(seconds=30), 100)
    assert claimed
    for delivery in claimed:
        outcome = SendOutcome(status_code=500)
        store.record(DeliveryPolicy(schedule=()).result(delivery, outcome, at=now, duration_ms=1))

    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill("shopkeeper")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Shop at a glance")).to_be_visible()

    to_ship = page.locator("#to-ship")
    expect(to_ship.get_by_role("heading", name="To ship")).to_be_visible()
    # 1 + 2 + 3 placed in the last 4 days, and the one placed for the webhooks
    expect(to_ship.locator("tbody tr")).to_have_count(7)
    expect(to_ship.locator("tbody tr").last).to_contain_text("—")  # placed without an address
    expect(to_ship.locator("tbody tr").first).to_contain_text("buyer")
    running_low = page.locator("#running-low")
    expect(running_low.get_by_role("link", name="Dashboard spelt 1kg")).to_be_visible()
    expect(running_low.get_by_text("Dashboard barley 5kg")).to_have_count(0)
    spelt = running_low.get_by_role("row").filter(has_text="Dashboard spelt 1kg")
    expect(spelt.get_by_role("button", name="Add")).to_be_visible()

    chart = page.locator("#sales-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(30)
    heights = chart.locator("rect.bar").evaluate_all(
        "bars => bars.map(b => b.getBoundingClientRect().height)"
    )
    page.get_by_text("The figures, day by day").click()
    expect(page.locator("#sales-table tbody tr")).to_have_count(30)
    orders_per_day = page.locator("#sales-table tbody td:nth-child(2)").all_inner_texts()
    # The table runs newest first, the chart oldest first: a bar is drawn where there are sales.
    assert [h > 0 for h in heights] == [n != "0" for n in reversed(orders_per_day)]
    assert sum(h > 0 for h in heights) >= 20
    integrations = page.locator("#integrations")
    expect(integrations.get_by_role("heading", name="Integrations")).to_be_visible()
    rows = integrations.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Dashboard switched-off hook")
    expect(rows.first).to_contain_text("disabled")
    expect(rows.last).to_contain_text("Dashboard failing hook")
    expect(rows.last.locator("td.num")).to_have_text(str(len(claimed)))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)

    link = page.get_by_role("link", name="Export the last 30 days (CSV)")
    with page.expect_download() as download:
        link.click()
    saved = download.value.path()
    lines = Path(saved).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(
        "order_id,placed_at,status,customer,invoice_number,sku,product,quantity"
    )
    assert download.value.suggested_filename.startswith("orders-")
    assert len(lines) > 30

    # The failing endpoint's link opens its deliveries, the failed one among them.
    integrations.get_by_role("link", name="Dashboard failing hook").click()
    expect(page).to_have_url(f"{base}/admin/webhooks/{hooks[1]}/#deliveries")
    deliveries = page.locator("table").filter(has=page.get_by_role("cell", name="failed"))
    expect(deliveries.get_by_role("button", name="Send again")).to_have_count(len(claimed))
