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
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from opply.adapters.database import make_engine
from opply.adapters.migrations import runner
from opply.application.dto import NewUser
from opply.entrypoints.app import create_app
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
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app on a real server and a migrated SQLite file; yields its base URL."""
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
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        engine.dispose()


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
