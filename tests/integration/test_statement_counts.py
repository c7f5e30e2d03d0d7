"""How many SQL statements each endpoint sends, asserted exactly, on SQLite and PostgreSQL.

CI does not run the benchmark (`make bench`); these counts are what keeps its figures honest: a
query per line or per order, a forgotten COUNT(*), a token check that grows a second query, all
change a number here. Transaction control (BEGIN, COMMIT, the tests' savepoints) is not counted:
it differs between the databases and between the tests and production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, count_statements

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

# Statements whose effect outlives their transaction. Behind a pooler in transaction mode
# (PgBouncer, RDS Proxy) the next transaction of the same client may run on another server
# connection, and this one's next transaction may belong to another client: session state would
# be lost, or leak to a stranger (docs/deployment.md, "Through a pooler").
SESSION_STATE = re.compile(
    r"^\s*(SET\s+(?!LOCAL\b)|RESET\b|LISTEN\b|UNLISTEN\b|PREPARE\b|DEALLOCATE\b|DECLARE\b"
    r"|DISCARD\b|LOAD\b|CREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP)"
    r"|\bpg_(try_)?advisory_(un)?lock(_shared)?\s*\(|\bset_config\s*\(",
    re.IGNORECASE,
)


@dataclass
class World:
    client: FlaskClient
    container: Container
    uow: Any

    def customer(self) -> dict[str, str]:
        return f.bearer(self.client, f.user(self.container).username)

    def staff(self) -> dict[str, str]:
        return f.bearer(self.client, f.user(self.container, staff=True).username)

    def products(self, n: int, stock: int = 100) -> list[int]:
        return [f.product(self.uow, stock=stock).id for _ in range(n)]

    def order(self, headers: dict[str, str], lines: int = 2) -> int:
        body = f.order_body(*((pid, 1) for pid in self.products(lines)))
        response = self.client.post("/api/v1/orders/", json=body, headers=headers)
        assert response.status_code == 201
        order_id: int = response.get_json()["id"]
        return order_id


Request = tuple[str, str, dict[str, Any]]


def _login(w: World) -> Request:
    user = f.user(w.container)
    return "POST", "/api/token/", {"json": {"username": user.username, "password": f.PASSWORD}}


def _refresh(w: World) -> Request:
    tokens = f.login(w.client, f.user(w.container).username)
    return "POST", "/api/token/refresh/", {"json": {"refresh": tokens["refresh"]}}


def _revoke(w: World) -> Request:
    tokens = f.login(w.client, f.user(w.container).username)
    return "POST", "/api/token/revoke/", {"json": {"refresh": tokens["refresh"]}}


def _product_list(w: World) -> Request:
    w.products(25)
    return "GET", "/api/v1/products/", {}


def _product_list_deep_page(w: World) -> Request:
    w.products(25)
    return "GET", "/api/v1/products/?page=3&page_size=10", {}


def _product_list_past_the_end(w: World) -> Request:
    w.products(3)
    return "GET", "/api/v1/products/?page=5", {}


def _product_search(w: World) -> Request:
    w.products(3)
    return "GET", "/api/v1/products/?search=product&in_stock=true", {}


def _product_detail(w: World) -> Request:
    return "GET", f"/api/v1/products/{w.products(1)[0]}/", {}


def _product_revalidation(w: World) -> Request:
    path = f"/api/v1/products/{w.products(1)[0]}/"
    etag = w.client.get(path).headers["ETag"]
    return "GET", path, {"headers": {"If-None-Match": etag}}


def _product_create(w: World) -> Request:
    body = {"name": "Rye 10kg", "price": "4.20", "quantity_in_stock": 3}
    return "POST", "/api/v1/products/", {"json": body, "headers": w.staff()}


def _product_create_with_sku(w: World) -> Request:
    body = {"name": "Rye 10kg", "price": "4.20", "sku": "RYE-10", "vat_rate": "7.00"}
    return "POST", "/api/v1/products/", {"json": body, "headers": w.staff()}


def _product_patch(w: World) -> Request:
    path = f"/api/v1/products/{w.products(1)[0]}/"
    return "PATCH", path, {"json": {"price": "5.00"}, "headers": w.staff()}


def _product_restock(w: World) -> Request:
    path = f"/api/v1/products/{w.products(1)[0]}/restock/"
    return "POST", path, {"json": {"quantity": 4}, "headers": w.staff()}


def _place_order(lines: int) -> Callable[[World], Request]:
    def build(w: World) -> Request:
        body = f.order_body(*((pid, 1) for pid in w.products(lines)))
        return "POST", "/api/v1/orders/", {"json": body, "headers": w.customer()}

    return build


def _place_order_with_key(w: World) -> Request:
    body = f.order_body(*((pid, 1) for pid in w.products(2)))
    headers = {**w.customer(), "Idempotency-Key": "k-1"}
    return "POST", "/api/v1/orders/", {"json": body, "headers": headers}


ADDRESS = {
    "recipient": "Jane Baker",
    "line1": "12 Mill Lane",
    "postal_code": "EC1A 1BB",
    "city": "London",
    "country": "GB",
}


def _address(w: World, headers: dict[str, str]) -> int:
    response = w.client.post("/api/v1/me/addresses/", json=ADDRESS, headers=headers)
    assert response.status_code == 201
    address_id: int = response.get_json()["id"]
    return address_id


def _place_order_to_an_address(w: World) -> Request:
    headers = w.customer()
    body = {
        **f.order_body(*((pid, 1) for pid in w.products(2))),
        "address_id": _address(w, headers),
    }
    return "POST", "/api/v1/orders/", {"json": body, "headers": headers}


def _reorder(w: World) -> Request:
    headers = w.customer()
    _address(w, headers)
    return "POST", f"/api/v1/orders/{w.order(headers)}/reorder/", {"headers": headers}


def _add_address(w: World) -> Request:
    headers = w.customer()
    _address(w, headers)
    return "POST", "/api/v1/me/addresses/", {"json": ADDRESS, "headers": headers}


def _address_book(w: World) -> Request:
    headers = w.customer()
    for _ in range(3):
        _address(w, headers)
    return "GET", "/api/v1/me/addresses/", {"headers": headers}


def _ship(w: World) -> Request:
    order_id = w.order(w.customer())
    return "POST", f"/api/v1/staff/orders/{order_id}/ship/", {"headers": w.staff()}


def _invoice(w: World) -> Request:
    headers = w.customer()
    order_id = w.order(headers)
    shipped = w.client.post(f"/api/v1/staff/orders/{order_id}/ship/", headers=w.staff())
    assert shipped.status_code == 200
    return "GET", f"/api/v1/orders/{order_id}/invoice/", {"headers": headers}


def _order_history(orders: int) -> Callable[[World], Request]:
    def build(w: World) -> Request:
        headers = w.customer()
        for _ in range(orders):
            w.order(headers)
        return "GET", "/api/v1/orders/", {"headers": headers}

    return build


def _order_detail(w: World) -> Request:
    headers = w.customer()
    return "GET", f"/api/v1/orders/{w.order(headers)}/", {"headers": headers}


def _order_cancel(lines: int) -> Callable[[World], Request]:
    def build(w: World) -> Request:
        headers = w.customer()
        return "POST", f"/api/v1/orders/{w.order(headers, lines)}/cancel/", {"headers": headers}

    return build


def _readiness(w: World) -> Request:
    return "GET", "/readyz", {}


def _order_history_past_the_end(w: World) -> Request:
    headers = w.customer()
    w.order(headers)
    return "GET", "/api/v1/orders/?page=5", {"headers": headers}


def _liveness(w: World) -> Request:
    return "GET", "/healthz", {}


# (endpoint, request builder, expected status, statements)
CASES: list[tuple[str, Callable[[World], Request], int, int | dict[str, int]]] = [
    # username -> hash (read), then in the write: the user again, the new refresh token
    ("log in", _login, 200, 3),
    ("refresh", _refresh, 200, 4),
    ("log out", _revoke, 204, 2),
    # one statement: page and catalogue size together (product_stats), no COUNT(*)
    ("product list", _product_list, 200, 1),
    ("product list, deep page", _product_list_deep_page, 200, 1),
    ("product list, past the end", _product_list_past_the_end, 200, 2),
    ("product list, filtered", _product_search, 200, 2),
    ("product detail", _product_detail, 200, 1),
    ("product detail, 304", _product_revalidation, 304, 1),
    # the caller (1), then the use case
    # the caller, the product; without a SKU, the UPDATE that gives it P- and its id
    ("create product with a SKU", _product_create_with_sku, 201, 2),
    ("create product without a SKU", _product_create, 201, 3),
    ("change product", _product_patch, 200, 3),
    ("restock product", _product_restock, 200, 3),
    # caller, the address (named or the default), lock products, one UPDATE of every line's
    # stock, order, its lines (one INSERT), its order.placed event
    ("place order, 1 line", _place_order(1), 201, 7),
    ("place order, 2 lines", _place_order(2), 201, 7),
    ("place order, 50 lines", _place_order(50), 201, 7),
    ("place order to an address", _place_order_to_an_address, 201, 7),
    ("place order with Idempotency-Key", _place_order_with_key, 201, 9),
    # caller, the old order (a read), then placing as above
    ("reorder", _reorder, 201, 8),
    # caller, then one statement
    ("address book, 3 addresses", _address_book, 200, 2),
    # caller, lock the customer, the book, clear other defaults, insert
    ("add address", _add_address, 201, 5),
    # caller, order (locked), its lines, the year's invoice number, the order, the customer,
    # its order.shipped event
    ("ship order", _ship, 200, 7),
    # caller, then the order with its lines in one statement
    ("invoice", _invoice, 200, 2),
    # caller, then one statement: the page of orders with their lines and the list's size
    ("order history, 1 order", _order_history(1), 200, 2),
    ("order history, 20 orders", _order_history(20), 200, 2),
    ("order history, past the end", _order_history_past_the_end, 200, 3),
    # caller, then the order with its lines in one statement
    ("order detail", _order_detail, 200, 2),
    # caller, order (locked), its lines, products (locked), their stock, the order's status,
    # its order.cancelled event
    ("cancel order, 1 line", _order_cancel(1), 200, 7),
    ("cancel order, 10 lines", _order_cancel(10), 200, 7),
    # PostgreSQL bounds the ping with SET LOCAL statement_timeout first
    ("readiness", _readiness, 200, {"sqlite": 1, "postgresql": 2}),
    ("liveness", _liveness, 200, 0),
]


@pytest.mark.parametrize(
    ("build", "status", "expected"),
    [pytest.param(build, status, n, id=name) for name, build, status, n in CASES],
)
def test_each_endpoint_sends_a_fixed_number_of_sql_statements(
    client: FlaskClient,
    container: Container,
    uow: Any,
    database: Database,
    build: Callable[[World], Request],
    status: int,
    expected: int | dict[str, int],
) -> None:
    method, path, kwargs = build(World(client, container, uow))
    with count_statements(database.engine) as counter:
        response = client.open(path, method=method, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    queries = [
        s for s in counter.statements if not s.lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]
    if isinstance(expected, dict):
        expected = expected[database.name]
    assert len(queries) == expected, "\n".join(queries)


def test_an_order_writes_the_stock_of_all_its_lines_in_one_update(
    client: FlaskClient, container: Container, uow: Any, database: Database
) -> None:
    w = World(client, container, uow)
    ids = w.products(3, stock=10)
    headers = w.customer()
    with count_statements(database.engine) as counter:
        response = client.post(
            "/api/v1/orders/", json=f.order_body(*((pid, 2) for pid in ids)), headers=headers
        )
    assert response.status_code == 201
    updates = [s for s in counter.statements if s.lstrip().upper().startswith("UPDATE PRODUCTS")]
    assert len(updates) == 1
    stocks = [client.get(f"/api/v1/products/{pid}/").get_json()["quantity_in_stock"] for pid in ids]
    assert stocks == [8, 8, 8]


@pytest.mark.parametrize(
    "statement",
    [
        "SET statement_timeout = 2000",
        "set search_path to x",
        "RESET ALL",
        "LISTEN orders",
        "PREPARE p AS SELECT 1",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "CREATE TEMP TABLE t (id int)",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock(1)",
        "SELECT set_config('statement_timeout', '1s', false)",
    ],
)
def test_the_session_state_pattern_knows_what_outlives_a_transaction(statement: str) -> None:
    assert SESSION_STATE.search(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SET LOCAL statement_timeout = 2000",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT 1 FROM products WHERE name = 'SET x'",
        "UPDATE products SET quantity_in_stock = 1",
    ],
)
def test_the_session_state_pattern_lets_transaction_scoped_statements_pass(statement: str) -> None:
    assert not SESSION_STATE.search(statement)


@pytest.mark.parametrize("build", [pytest.param(build, id=name) for name, build, *_ in CASES])
def test_no_endpoint_sends_a_statement_whose_effect_outlives_its_transaction(
    client: FlaskClient,
    container: Container,
    uow: Any,
    database: Database,
    build: Callable[[World], Request],
) -> None:
    method, path, kwargs = build(World(client, container, uow))
    with count_statements(database.engine) as counter:
        client.open(path, method=method, **kwargs)
    assert counter.statements or path == "/healthz"
    assert [s for s in counter.statements if SESSION_STATE.search(s)] == []
