"""Text PostgreSQL refuses (a NUL character, an unpaired surrogate) never reaches it: on every
endpoint that takes text it is a 422 naming the field, in the API and in the admin. Run on
SQLite (which would have stored it) and on PostgreSQL (which would have answered an error)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f

NUL = "a\x00b"
SURROGATE = "\udb79x"


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["code"] == "validation_error"
    assert field in [e["field"] for e in body["errors"]], body


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_a_login_with_such_a_username_or_password_is_a_422(client: FlaskClient, bad: str) -> None:
    _refused(
        client.post("/api/token/", json={"username": bad, "password": "whatever1"}), "username"
    )
    _refused(client.post("/api/token/", json={"username": "alice", "password": bad}), "password")


def test_a_search_with_a_nul_is_a_422(client: FlaskClient) -> None:
    _refused(client.get("/api/v1/products/?search=a%00b"), "search")


def test_staff_filters_with_a_nul_are_a_422(client: FlaskClient, container: Container) -> None:
    staff = f.bearer(client, f.user(container, staff=True).username)
    _refused(client.get("/api/v1/staff/orders/?customer=a%00b", headers=staff), "customer")


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("field", ["name", "sku", "unit", "description"])
def test_product_text_fields_with_such_text_are_a_422_and_nothing_is_written(
    client: FlaskClient, container: Container, uow: Any, field: str, bad: str
) -> None:
    staff = f.bearer(client, f.user(container, staff=True).username)
    body = {"name": "Oat", "price": "1.00", field: bad}
    _refused(client.post("/api/v1/products/", json=body, headers=staff), field)
    made = f.product(uow)
    patched = client.patch(f"/api/v1/products/{made.id}/", json={field: bad}, headers=staff)
    _refused(patched, field)
    assert client.get("/api/v1/products/").get_json()["count"] == 1


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_refresh_and_password_changes_with_such_text_are_a_422(
    client: FlaskClient, container: Container, bad: str
) -> None:
    _refused(client.post("/api/token/refresh/", json={"refresh": bad}), "refresh")
    _refused(client.post("/api/token/revoke/", json={"refresh": bad}), "refresh")
    headers = f.bearer(client, f.user(container).username)
    answer = client.post(
        "/api/v1/me/password/",
        json={"current_password": f.PASSWORD, "new_password": bad},
        headers=headers,
    )
    _refused(answer, "new_password")


def test_an_idempotency_key_with_a_nul_is_a_422(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    product = f.product(uow)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "k\x00"}
    answer = client.post("/api/v1/orders/", json=f.order_body((product.id, 1)), headers=headers)
    _refused(answer, "Idempotency-Key")


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin(client: FlaskClient, container: Container) -> FlaskClient:
    from tests.integration.test_admin import admin_login

    user = f.user(container, staff=True)
    assert admin_login(client, user.username).status_code == 303
    return client


def test_admin_searches_and_paths_with_a_nul_never_reach_the_database(admin: FlaskClient) -> None:
    for path in (
        "/admin/products/?q=a%00b",
        "/admin/users/?q=a%00b",
        "/admin/orders/?customer=%00",
    ):
        answer = admin.get(path)
        assert answer.status_code == 422, path
        assert "NUL" in answer.get_data(as_text=True)
    assert admin.get("/admin/users/a%00b/").status_code == 404


def test_an_admin_form_with_a_nul_says_why_and_creates_nothing(admin: FlaskClient) -> None:
    from tests.integration.test_admin import post

    answer = post(admin, "/admin/products/new/", {"name": NUL, "price": "1.00"})
    assert answer.status_code == 422
    assert "Name: Must not contain NUL characters" in answer.get_data(as_text=True)
    assert admin.get("/api/v1/products/").get_json()["count"] == 0
    user = post(admin, "/admin/users/new/", {"username": NUL, "password": "long enough pass"})
    assert user.status_code == 422


def test_an_admin_login_with_a_nul_is_refused_like_a_wrong_password(client: FlaskClient) -> None:
    from tests.integration.test_admin import admin_login

    assert admin_login(client, NUL).status_code == 401


ADDRESS_FIELDS = (
    "label", "recipient", "company", "line1", "line2", "postal_code", "city", "country", "phone"
)  # fmt: skip


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("field", ADDRESS_FIELDS)
def test_address_fields_with_such_text_are_a_422_and_nothing_is_written(
    client: FlaskClient, container: Container, field: str, bad: str
) -> None:
    headers = f.bearer(client, f.user(container).username)
    address = {
        "recipient": "Jane",
        "line1": "1 Mill Lane",
        "postal_code": "1",
        "city": "Leeds",
        "country": "GB",
    }
    _refused(
        client.post("/api/v1/me/addresses/", json={**address, field: bad}, headers=headers), field
    )
    made = client.post("/api/v1/me/addresses/", json=address, headers=headers).get_json()
    path = f"/api/v1/me/addresses/{made['id']}/"
    _refused(client.patch(path, json={field: bad}, headers=headers), field)
    assert client.get(path, headers=headers).get_json() == made
