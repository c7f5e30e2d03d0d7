"""The v1.1 contract over HTTP: the realistic catalogue, VAT on orders, the order's life, the
staff orders API and the customer's account. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f

PROBLEM = "application/problem+json"


def _problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.get_json()
    assert answer.mimetype == PROBLEM
    body: dict[str, Any] = answer.get_json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def staff(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container, staff=True).username)


@pytest.fixture
def customer(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container, username="alice").username)


def _create(client: FlaskClient, staff: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Oat flour 25kg", "price": "12.50", **fields}
    return client.post("/api/v1/products/", json=body, headers=staff)


# --- products --------------------------------------------------------------------------------


def test_staff_create_a_product_with_every_v1_1_field(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    answer = _create(
        client,
        staff,
        sku="OAT-FL-25",
        unit="bag",
        description="Fine-milled, gluten-free",
        vat_rate="7",
        quantity_in_stock=40,
    )
    assert answer.status_code == 201
    product = answer.get_json()
    assert product == f.product_json(
        product["id"],
        "Oat flour 25kg",
        "12.50",
        40,
        sku="OAT-FL-25",
        unit="bag",
        description="Fine-milled, gluten-free",
        vat_rate="7.00",
    )
    assert client.get(f"/api/v1/products/{product['id']}/").get_json() == product


def test_a_v1_client_creating_a_product_gets_the_generated_sku_and_defaults(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    product = _create(client, staff, quantity_in_stock=3).get_json()
    assert product["sku"] == f"P-{product['id']:06d}"
    assert (product["unit"], product["description"], product["vat_rate"]) == ("unit", "", "0.00")


def test_a_sku_taken_in_any_letter_case_is_a_409_and_changes_nothing(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    first = _create(client, staff, sku="OAT-FL-25").get_json()
    _problem(_create(client, staff, name="Copy", sku="oat-fl-25"), 409, "sku_taken")
    other = _create(client, staff, name="Rye", sku="RYE-1").get_json()
    taken = client.patch(
        f"/api/v1/products/{other['id']}/",
        json={"sku": "Oat-Fl-25", "name": "Renamed"},
        headers=staff,
    )
    _problem(taken, 409, "sku_taken")
    assert client.get(f"/api/v1/products/{other['id']}/").get_json()["name"] == "Rye"
    assert client.get("/api/v1/products/?search=oat").get_json()["count"] == 1
    assert first["sku"] == "OAT-FL-25"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"sku": "has space"}, "sku"),
        ({"sku": "x" * 65}, "sku"),
        ({"sku": ""}, "sku"),
        ({"unit": ""}, "unit"),
        ({"unit": "x" * 33}, "unit"),
        ({"description": "x" * 2001}, "description"),
        ({"vat_rate": "100.01"}, "vat_rate"),
        ({"vat_rate": "7.001"}, "vat_rate"),
        ({"vat_rate": "-1"}, "vat_rate"),
        ({"vat_rate": 7}, "vat_rate"),
        ({"price": "12.505"}, "price"),
    ],
)
def test_each_fields_limits_are_a_422_naming_the_field(
    client: FlaskClient, staff: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    body = _problem(_create(client, staff, **fields), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]
    assert client.get("/api/v1/products/").get_json()["count"] == 0


def test_a_sku_of_the_generated_form_is_kept_for_generated_ones(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    _problem(_create(client, staff, sku="P-000042"), 422, "invalid_sku")
    product = _create(client, staff).get_json()
    own = client.patch(
        f"/api/v1/products/{product['id']}/", json={"sku": product["sku"].lower()}, headers=staff
    )
    assert own.status_code == 200


def test_staff_patch_any_field_but_the_id_and_an_empty_patch_is_refused(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    product = _create(client, staff).get_json()
    path = f"/api/v1/products/{product['id']}/"
    changes = {
        "sku": "OAT-2",
        "name": "Oat flour 20kg",
        "description": "New bag size",
        "unit": "sack",
        "price": "10.00",
        "vat_rate": "5.50",
        "quantity_in_stock": 7,
        "min_order_quantity": 12,
        "case_size": 6,
    }
    assert client.patch(path, json=changes, headers=staff).get_json() == {
        "id": product["id"],
        **changes,
    }
    _problem(client.patch(path, json={"id": 99}, headers=staff), 422, "validation_error")
    _problem(client.patch(path, json={}, headers=staff), 422, "validation_error")


def test_the_catalogue_search_matches_a_name_or_a_sku(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    _create(client, staff, name="Oat flour", sku="FL-1")
    _create(client, staff, name="Rye", sku="OAT-RYE")
    _create(client, staff, name="Salt", sku="SLT")
    found = client.get("/api/v1/products/?search=oat").get_json()
    assert [p["name"] for p in found["results"]] == ["Oat flour", "Rye"]
    assert client.get("/api/v1/products/?search=slt").get_json()["count"] == 1


# --- orders: VAT and the order's life -----------------------------------------------------------


def _order(client: FlaskClient, headers: dict[str, str], *lines: tuple[int, int]) -> Any:
    return client.post("/api/v1/orders/", json=f.order_body(*lines), headers=headers)


def test_an_order_carries_each_lines_snapshot_and_vat_rounded_half_up(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    oat = _create(
        client, staff, sku="OAT-FL-25", unit="bag", vat_rate="7.00", quantity_in_stock=10
    ).get_json()
    salt = _create(
        client, staff, name="Salt", price="0.05", vat_rate="10.00", quantity_in_stock=5
    ).get_json()
    answer = _order(client, customer, (oat["id"], 3), (salt["id"], 1))
    assert answer.status_code == 201
    order = answer.get_json()
    assert order["lines"][0] == {
        "product_id": oat["id"],
        "sku": "OAT-FL-25",
        "product_name": "Oat flour 25kg",
        "unit": "bag",
        "unit_price": "12.50",
        "vat_rate": "7.00",
        "quantity": 3,
        "line_net": "37.50",
        "line_vat": "2.63",
        "line_total": "40.13",
    }
    assert order["lines"][1]["line_vat"] == "0.01"  # 0.005, half up
    assert (order["subtotal"], order["vat_total"], order["total"]) == ("37.55", "2.64", "40.19")
    assert order["currency"] == "EUR"
    # Later changes to the product do not rewrite the order.
    client.patch(
        f"/api/v1/products/{oat['id']}/",
        json={"vat_rate": "19.00", "sku": "NEW", "unit": "sack", "price": "99.00"},
        headers=staff,
    )
    again = client.get(f"/api/v1/orders/{order['id']}/", headers=customer).get_json()
    assert again["lines"] == order["lines"]
    assert again["total"] == "40.19"


def test_staff_ship_and_deliver_and_the_customer_sees_each_step(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    product = _create(client, staff, quantity_in_stock=10).get_json()
    order = _order(client, customer, (product["id"], 2)).get_json()
    base = f"/api/v1/staff/orders/{order['id']}"
    shipped = client.post(f"{base}/ship/", headers=staff)
    assert shipped.status_code == 200
    body = shipped.get_json()
    assert body["status"] == "shipped"
    assert body["shipped_at"].endswith("Z")
    assert body["customer"]["username"] == "alice"
    _problem(client.post(f"{base}/ship/", headers=staff), 409, "invalid_status_transition")
    _problem(
        client.post(f"/api/v1/orders/{order['id']}/cancel/", headers=customer),
        409,
        "order_not_cancellable",
    )
    _problem(client.post(f"{base}/cancel/", headers=staff), 409, "order_not_cancellable")
    delivered = client.post(f"{base}/deliver/", headers=staff).get_json()
    assert (delivered["status"], delivered["shipped_at"]) == ("delivered", body["shipped_at"])
    mine = client.get(f"/api/v1/orders/{order['id']}/", headers=customer).get_json()
    assert mine["status"] == "delivered"
    assert mine["delivered_at"] == delivered["delivered_at"]
    assert "customer" not in mine  # the customer's own view does not repeat who they are
    stock = client.get(f"/api/v1/products/{product['id']}/").get_json()["quantity_in_stock"]
    assert stock == 8  # shipping and delivering never move stock


def test_staff_cancel_a_placed_order_and_the_stock_comes_back(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    product = _create(client, staff, quantity_in_stock=10).get_json()
    order = _order(client, customer, (product["id"], 4)).get_json()
    cancelled = client.post(f"/api/v1/staff/orders/{order['id']}/cancel/", headers=staff)
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["cancelled_at"] is not None
    assert client.get(f"/api/v1/products/{product['id']}/").get_json()["quantity_in_stock"] == 10
    _problem(
        client.post(f"/api/v1/staff/orders/{order['id']}/deliver/", headers=staff),
        409,
        "invalid_status_transition",
    )


def test_staff_list_every_customers_orders_and_filter_them(
    client: FlaskClient, container: Container, staff: dict[str, str], customer: dict[str, str]
) -> None:
    bob = f.bearer(client, f.user(container, username="bob").username)
    product = _create(client, staff, quantity_in_stock=100).get_json()
    mine = [_order(client, customer, (product["id"], 1)).get_json()["id"] for _ in range(3)]
    bobs = _order(client, bob, (product["id"], 1)).get_json()["id"]
    client.post(f"/api/v1/staff/orders/{mine[0]}/ship/", headers=staff)
    every = client.get("/api/v1/staff/orders/", headers=staff).get_json()
    assert [o["id"] for o in every["results"]] == [bobs, mine[2], mine[1], mine[0]]
    assert [o["customer"]["username"] for o in every["results"]] == [
        "bob",
        "alice",
        "alice",
        "alice",
    ]
    alices = client.get("/api/v1/staff/orders/?customer=alice&status=placed", headers=staff)
    body = alices.get_json()
    assert ([o["id"] for o in body["results"]], body["count"]) == ([mine[2], mine[1]], 2)
    paged = client.get(
        "/api/v1/staff/orders/?customer=alice&status=placed&page_size=1", headers=staff
    ).get_json()
    assert "customer=alice" in paged["next"]
    assert "status=placed" in paged["next"]
    assert "/api/v1/staff/orders/" in paged["next"]
    nobody = client.get("/api/v1/staff/orders/?customer=nobody", headers=staff).get_json()
    assert (nobody["count"], nobody["results"]) == (0, [])
    detail = client.get(f"/api/v1/staff/orders/{bobs}/", headers=staff).get_json()
    assert detail["customer"]["username"] == "bob"
    _problem(client.get("/api/v1/staff/orders/987654/", headers=staff), 404, "not_found")


@pytest.mark.parametrize("status", ["placed", "shipped", "delivered", "cancelled"])
def test_the_history_filters_by_any_of_the_four_statuses(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str], status: str
) -> None:
    product = _create(client, staff, quantity_in_stock=100).get_json()
    ids = {}
    for wanted in ("placed", "shipped", "delivered", "cancelled"):
        order_id = _order(client, customer, (product["id"], 1)).get_json()["id"]
        ids[wanted] = order_id
        base = f"/api/v1/staff/orders/{order_id}"
        if wanted in ("shipped", "delivered"):
            client.post(f"{base}/ship/", headers=staff)
        if wanted == "delivered":
            client.post(f"{base}/deliver/", headers=staff)
        if wanted == "cancelled":
            client.post(f"{base}/cancel/", headers=staff)
    found = client.get(f"/api/v1/orders/?status={status}", headers=customer).get_json()
    assert [o["id"] for o in found["results"]] == [ids[status]]


@pytest.mark.parametrize("query", ["status=lost", "status=", "customer=", "page_size=101"])
def test_an_unknown_filter_value_is_a_422(
    client: FlaskClient, staff: dict[str, str], query: str
) -> None:
    _problem(client.get(f"/api/v1/staff/orders/?{query}", headers=staff), 422, "validation_error")


def test_a_customer_on_a_staff_endpoint_is_a_403_and_nothing_changes(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    product = _create(client, staff, quantity_in_stock=10).get_json()
    order_id = _order(client, customer, (product["id"], 1)).get_json()["id"]
    for method, path in [
        ("get", "/api/v1/staff/orders/"),
        ("get", f"/api/v1/staff/orders/{order_id}/"),
        ("post", f"/api/v1/staff/orders/{order_id}/ship/"),
        ("post", f"/api/v1/staff/orders/{order_id}/deliver/"),
        ("post", f"/api/v1/staff/orders/{order_id}/cancel/"),
    ]:
        _problem(getattr(client, method)(path, headers=customer), 403, "permission_denied")
        _problem(getattr(client, method)(path), 401, "not_authenticated")
    mine = client.get(f"/api/v1/orders/{order_id}/", headers=customer).get_json()
    assert mine["status"] == "placed"


# --- the account --------------------------------------------------------------------------------


def test_me_says_who_is_calling(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    me = client.get("/api/v1/me/", headers=customer).get_json()
    assert set(me) == {"id", "username", "is_staff"}
    assert (me["username"], me["is_staff"]) == ("alice", False)
    assert client.get("/api/v1/me/", headers=staff).get_json()["is_staff"] is True
    _problem(client.get("/api/v1/me/"), 401, "not_authenticated")


def test_a_new_password_ends_every_earlier_token_on_every_device(
    client: FlaskClient, container: Container
) -> None:
    username = f.user(container).username
    phone, laptop = f.login(client, username), f.login(client, username)
    answer = client.post(
        "/api/v1/me/password/",
        json={"current_password": f.PASSWORD, "new_password": "a brand new passphrase"},
        headers={"Authorization": f"Bearer {phone['access']}"},
    )
    assert answer.status_code == 204
    assert answer.get_data() == b""
    for tokens in (phone, laptop):
        refused = client.get("/api/v1/me/", headers={"Authorization": f"Bearer {tokens['access']}"})
        _problem(refused, 401, "invalid_token")
        _problem(
            client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}),
            401,
            "invalid_token",
        )
    _problem(
        client.post("/api/token/", json={"username": username, "password": f.PASSWORD}),
        401,
        "invalid_credentials",
    )
    fresh = f.login(client, username, "a brand new passphrase")
    assert client.get("/api/v1/me/", headers={"Authorization": f"Bearer {fresh['access']}"})


def test_a_wrong_current_password_is_a_403_and_a_weak_new_one_a_422(
    client: FlaskClient, container: Container
) -> None:
    username = f.user(container).username
    headers = f.bearer(client, username)
    wrong = client.post(
        "/api/v1/me/password/",
        json={"current_password": "not-it-at-all", "new_password": "a brand new passphrase"},
        headers=headers,
    )
    _problem(wrong, 403, "invalid_credentials")
    weak = client.post(
        "/api/v1/me/password/",
        json={"current_password": f.PASSWORD, "new_password": "password"},
        headers=headers,
    )
    _problem(weak, 422, "weak_password")
    missing = client.post("/api/v1/me/password/", json={"new_password": "x"}, headers=headers)
    _problem(missing, 422, "validation_error")
    assert client.get("/api/v1/me/", headers=headers).status_code == 200  # nothing changed
    f.login(client, username)


# --- ending logins: every access token of it refused at once ---------------------------------


def test_reusing_a_spent_refresh_token_ends_the_access_tokens_of_that_login(
    client: FlaskClient, container: Container
) -> None:
    username = f.user(container).username
    stolen = f.login(client, username)
    other = f.login(client, username)
    rotated = client.post("/api/token/refresh/", json={"refresh": stolen["refresh"]}).get_json()
    reuse = client.post("/api/token/refresh/", json={"refresh": stolen["refresh"]})
    _problem(reuse, 401, "invalid_token")
    for access in (stolen["access"], rotated["access"]):
        _problem(
            client.get("/api/v1/me/", headers={"Authorization": f"Bearer {access}"}),
            401,
            "invalid_token",
        )
    assert client.get("/api/v1/me/", headers={"Authorization": f"Bearer {other['access']}"})


def test_logging_out_ends_that_logins_access_tokens(
    client: FlaskClient, container: Container
) -> None:
    username = f.user(container).username
    tokens = f.login(client, username)
    headers = {"Authorization": f"Bearer {tokens['access']}"}
    assert client.get("/api/v1/me/", headers=headers).status_code == 200
    revoked = client.post("/api/token/revoke/", json={"refresh": tokens["refresh"]})
    assert revoked.status_code == 204
    _problem(client.get("/api/v1/me/", headers=headers), 401, "invalid_token")


def test_a_reset_by_staff_or_a_deactivation_ends_every_login_of_the_user(
    client: FlaskClient, container: Container
) -> None:
    username = f.user(container).username
    before = f.bearer(client, username)
    container.set_password()(username, "a password set by staff")
    _problem(client.get("/api/v1/me/", headers=before), 401, "invalid_token")
    after = f.bearer(client, username, "a password set by staff")
    container.set_user_active()(username, False)
    _problem(client.get("/api/v1/me/", headers=after), 401, "invalid_token")
