"""The ordering API end to end through Flask's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import count_statements


def _stock(client: FlaskClient, product_id: int) -> int:
    stock: int = client.get(f"/api/v1/products/{product_id}/").get_json()["quantity_in_stock"]
    return stock


def test_a_customer_places_an_order_and_stock_goes_down(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    oats = f.product(uow, name="Oat flour 25kg", price="12.50", stock=40)
    rye = f.product(uow, price="3.10", stock=5)
    customer = f.user(container)
    response = client.post(
        "/api/v1/orders/",
        json=f.order_body((oats.id, 2), (rye.id, 1)),
        headers=f.bearer(client, customer.username),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/orders/{body['id']}/"
    assert body["status"] == "placed"
    assert body["currency"] == "EUR"
    assert body["total"] == "28.10"
    assert body["lines"][0] == {
        "product_id": oats.id,
        "sku": f"P-{oats.id:06d}",
        "product_name": "Oat flour 25kg",
        "unit": "unit",
        "unit_price": "12.50",
        "vat_rate": "0.00",
        "quantity": 2,
        "line_net": "25.00",
        "line_vat": "0.00",
        "line_total": "25.00",
    }
    assert (body["subtotal"], body["vat_total"]) == ("28.10", "0.00")
    assert body["shipped_at"] is body["delivered_at"] is body["cancelled_at"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", body["created_at"])
    assert _stock(client, oats.id) == 38
    assert _stock(client, rye.id) == 4


def test_an_order_that_exceeds_stock_on_one_line_changes_nothing(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=5)
    b = f.product(uow, stock=2)
    c = f.product(uow, stock=9)
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    response = client.post(
        "/api/v1/orders/", json=f.order_body((a.id, 1), (b.id, 5), (c.id, 1)), headers=headers
    )
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "out_of_stock"
    assert problem["errors"] == [{"product_id": b.id, "requested": 5, "available": 2}]
    assert [_stock(client, p.id) for p in (a, b, c)] == [5, 2, 9]
    assert client.get("/api/v1/orders/", headers=headers).get_json()["count"] == 0


def test_an_unknown_product_is_a_422_and_leaves_no_empty_order_behind(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=5)
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    response = client.post(
        "/api/v1/orders/", json=f.order_body((a.id, 1), (999_999, 1)), headers=headers
    )
    assert response.status_code == 422
    assert response.get_json()["code"] == "unknown_product"
    assert "999999" in response.get_json()["detail"]
    assert _stock(client, a.id) == 5
    assert client.get("/api/v1/orders/", headers=headers).get_json()["count"] == 0


def test_the_client_cannot_set_the_owner_of_an_order(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=5)
    alice, bob = f.user(container), f.user(container)
    body = {**f.order_body((a.id, 1)), "user": bob.id}
    response = client.post("/api/v1/orders/", json=body, headers=f.bearer(client, alice.username))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "user"
    bob_orders = client.get("/api/v1/orders/", headers=f.bearer(client, bob.username))
    assert bob_orders.get_json()["count"] == 0
    assert _stock(client, a.id) == 5


def test_order_history_shows_the_price_paid_not_todays_price(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, name="Old name", price="10.00", stock=5)
    customer = f.user(container)
    staff = f.user(container, staff=True)
    headers = f.bearer(client, customer.username)
    placed = client.post("/api/v1/orders/", json=f.order_body((a.id, 2)), headers=headers)
    patched = client.patch(
        f"/api/v1/products/{a.id}/",
        json={"price": "99.99", "name": "New name"},
        headers=f.bearer(client, staff.username),
    )
    assert patched.status_code == 200
    order = client.get(f"/api/v1/orders/{placed.get_json()['id']}/", headers=headers).get_json()
    assert order["lines"][0]["unit_price"] == "10.00"
    assert order["lines"][0]["product_name"] == "Old name"
    assert order["total"] == "20.00"


def test_customers_never_see_each_others_orders(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=50)
    alice, bob = f.user(container), f.user(container)
    alice_h, bob_h = f.bearer(client, alice.username), f.bearer(client, bob.username)
    order_id = client.post("/api/v1/orders/", json=f.order_body((a.id, 1)), headers=alice_h)
    alice_order = order_id.get_json()["id"]
    client.post("/api/v1/orders/", json=f.order_body((a.id, 3)), headers=bob_h)

    bob_list = client.get("/api/v1/orders/", headers=bob_h).get_json()
    assert bob_list["count"] == 1
    assert all(o["id"] != alice_order for o in bob_list["results"])
    for method, path in (
        ("get", f"/api/v1/orders/{alice_order}/"),
        ("post", f"/api/v1/orders/{alice_order}/cancel/"),
    ):
        response = getattr(client, method)(path, headers=bob_h)
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"
    missing = client.get("/api/v1/orders/987654/", headers=bob_h)
    assert missing.get_json()["detail"].replace("987654", "X") == client.get(
        f"/api/v1/orders/{alice_order}/", headers=bob_h
    ).get_json()["detail"].replace(str(alice_order), "X")


def test_orders_are_listed_newest_first_and_pages_neither_repeat_nor_skip(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=100)
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    ids = [
        client.post("/api/v1/orders/", json=f.order_body((a.id, 1)), headers=headers).get_json()[
            "id"
        ]
        for _ in range(5)
    ]
    seen: list[int] = []
    url: str | None = "/api/v1/orders/?page_size=2"
    while url:
        page = client.get(url, headers=headers).get_json()
        assert page["count"] == 5
        seen.extend(o["id"] for o in page["results"])
        url = page["next"]
    assert seen == sorted(ids, reverse=True)


def test_cancelling_puts_the_stock_back_and_a_second_cancel_is_a_409(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    a = f.product(uow, stock=10)
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    order = client.post("/api/v1/orders/", json=f.order_body((a.id, 4)), headers=headers)
    order_id = order.get_json()["id"]
    assert _stock(client, a.id) == 6
    cancelled = client.post(f"/api/v1/orders/{order_id}/cancel/", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert _stock(client, a.id) == 10
    again = client.post(f"/api/v1/orders/{order_id}/cancel/", headers=headers)
    assert again.status_code == 409
    assert again.get_json()["code"] == "order_not_cancellable"
    assert _stock(client, a.id) == 10
    listed = client.get("/api/v1/orders/?status=cancelled", headers=headers).get_json()
    assert [o["id"] for o in listed["results"]] == [order_id]


def test_listing_a_page_of_orders_takes_the_same_statements_for_1_or_20_orders(
    client: FlaskClient, container: Container, uow: Any, database: Any
) -> None:
    products = [f.product(uow, stock=1000) for _ in range(3)]
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    body = f.order_body(*((p.id, 1) for p in products))
    client.post("/api/v1/orders/", json=body, headers=headers)
    with count_statements(database.engine) as one:
        assert client.get("/api/v1/orders/", headers=headers).status_code == 200
    for _ in range(19):
        client.post("/api/v1/orders/", json=body, headers=headers)
    with count_statements(database.engine) as twenty:
        page = client.get("/api/v1/orders/", headers=headers).get_json()
    assert len(page["results"]) == 20
    assert twenty.count == one.count


def test_an_order_of_10_lines_takes_no_more_statements_than_one_of_2(
    client: FlaskClient, container: Container, uow: Any, database: Any
) -> None:
    products = [f.product(uow, stock=100) for _ in range(10)]
    customer = f.user(container)
    headers = f.bearer(client, customer.username)
    with count_statements(database.engine) as two:
        r = client.post(
            "/api/v1/orders/",
            json=f.order_body(*((p.id, 1) for p in products[:2])),
            headers=headers,
        )
        assert r.status_code == 201
    with count_statements(database.engine) as ten:
        r = client.post(
            "/api/v1/orders/", json=f.order_body(*((p.id, 1) for p in products)), headers=headers
        )
        assert r.status_code == 201
    assert ten.count == two.count, (two.statements, ten.statements)
