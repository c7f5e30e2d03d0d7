"""The dashboard and the CSV export through gunicorn in production mode on PostgreSQL: the
security headers let the inline SVG chart through, and an export that the client abandons
half-way gives its database connection (and its transaction) back at once."""

from __future__ import annotations

import contextlib
import http.client
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import text

from tests.integration import factories as f
from tests.integration.conftest import Database, build_test_container
from tests.integration.test_gunicorn_postgres import Server, _serve

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORDERS = 20_000  # two lines each: some megabytes of CSV, more than a socket's buffers hold


@pytest.fixture
def database(postgres_database: Database) -> Database:
    """PostgreSQL only (skipped with the conftest's message when TEST_DATABASE_URL is unset)."""
    return postgres_database


@pytest.fixture
def production(
    postgres_database: Database, committed_db: Database, tmp_path: Path
) -> Iterator[tuple[Server, str]]:
    """gunicorn in production mode with many orders; yields it and a staff user's name."""
    staff = f.user(build_test_container(committed_db), staff=True)
    with committed_db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO products (name, price, quantity_in_stock, sku, unit, description, "
                "vat_rate) VALUES ('=cmd|calc', 1.25, 5, 'GU-1', 'unit', '', 10), "
                "('Rye', 12.50, 500, 'GU-2', 'bag', '', 7)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO orders (customer_id, status, currency, created_at) "
                "SELECT :c, 'placed', 'EUR', now() - i * interval '1 minute' "
                "FROM generate_series(1, :n) AS i"
            ),
            {"c": staff.id, "n": ORDERS},
        )
        conn.execute(
            text(
                "INSERT INTO order_lines (order_id, product_id, sku, product_name, unit, "
                "unit_price, vat_rate, quantity) "
                "SELECT o.id, p.id, p.sku, p.name, p.unit, p.price, p.vat_rate, 1 + o.id % 3 "
                "FROM orders o CROSS JOIN products p"
            )
        )
    with _serve(
        postgres_database,
        tmp_path,
        OPPLY_ENV="production",
        RATELIMIT_ENABLED="false",
        # Production refuses to start without the seller its invoices name.
        SELLER_NAME="Opply Test GmbH",
        SELLER_ADDRESS="Teststraße 1\n10115 Berlin",
        SELLER_VAT_ID="DE123456789",
    ) as server:
        yield server, staff.username


class Browser:
    """Just enough of a browser for the admin: its cookie (whatever the Secure flag says, as
    a proxy terminating TLS would pass it on) and its forms' CSRF token."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookie = ""

    def open(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return connection, response

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        connection, response = self.open("GET", path)
        with contextlib.closing(connection):
            return response.status, dict(response.getheaders()), response.read().decode()

    def log_in(self, username: str) -> None:
        _, _, page = self.get("/admin/login/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        connection, response = self.open(
            "POST",
            "/admin/login/",
            {"username": username, "password": f.PASSWORD, "csrf_token": token.group(1)},
        )
        with contextlib.closing(connection):
            response.read()
        assert response.status == 303


def open_exports(database: Database) -> list[tuple[str, str]]:
    """The app's connections that are still inside a transaction, and their query."""
    with database.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'opply' AND state LIKE 'idle in transaction%'"
            )
        ).all()
    return [(row.state, row.query) for row in rows]


def test_the_dashboard_and_the_export_work_through_gunicorn_in_production(
    production: tuple[Server, str], committed_db: Database
) -> None:
    server, staff = production
    browser = Browser(server.base_url)
    browser.log_in(staff)

    status, headers, page = browser.get("/admin/")
    assert status == 200, server.log()
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy  # the chart's colours come from admin.css
    assert "script-src" not in policy  # and it needs no script
    assert len(re.findall(r'<rect class="bar"', page)) == 30
    assert '<span class="count">20000</span>' in page

    # A whole month, read to the end: every line, sums equal to the orders' totals.
    connection, response = browser.open("GET", "/admin/orders.csv?from=2000-01-01&to=2000-01-31")
    with contextlib.closing(connection):
        assert response.status == 200
        assert response.read().decode().splitlines() == [
            "order_id,placed_at,status,customer,invoice_number,sku,product,quantity,"
            "unit_price,vat_rate,net,vat,total,currency"
        ]

    status, _, _ = browser.get("/admin/")
    today = re.search(r'orders\.csv\?from=([0-9-]+)&amp;to=([0-9-]+)"', page)
    assert today
    query = f"from={today.group(1)}&to={today.group(2)}"
    connection, response = browser.open("GET", f"/admin/orders.csv?{query}")
    with contextlib.closing(connection):
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        lines = response.read().decode().splitlines()
    # The last 30 days hold the 20,000 orders a minute apart (about 14 days).
    assert len(lines) == 1 + 2 * ORDERS
    cells = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
    assert {c["product"] for c in cells} == {"'=cmd|calc", "Rye"}
    assert {c["invoice_number"] for c in cells} == {""}  # placed, not invoiced yet
    assert sum(Decimal(c["total"]) for c in cells) == sum(
        Decimal(c["net"]) + Decimal(c["vat"]) for c in cells
    )
    with committed_db.engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT sum(unit_price * quantity + round(unit_price * quantity * vat_rate "
                "* 0.01, 2)) FROM order_lines"
            )
        ).scalar_one()
    assert sum(Decimal(c["total"]) for c in cells) == expected

    # Abandoned after its first bytes: the worker notices, closes the stream, and the
    # database connection leaves its transaction (no export stays open).
    connection, response = browser.open("GET", f"/admin/orders.csv?{query}")
    assert response.read(4096)
    response.close()  # the socket with it: the server meets a closed connection
    connection.close()
    deadline = time.monotonic() + 10
    while open_exports(committed_db) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_exports(committed_db) == []
    status, _, _ = browser.get("/admin/")
    assert status == 200, server.log()
