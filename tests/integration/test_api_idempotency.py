"""Idempotency-Key over HTTP: a retried order takes stock once."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f


def test_a_retry_with_the_same_key_returns_the_first_order_and_takes_no_more_stock(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=10)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "tap-42"}
    first = client.post("/api/v1/orders/", json=f.order_body((p.id, 3)), headers=headers)
    retry = client.post("/api/v1/orders/", json=f.order_body((p.id, 3)), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Location"] == first.headers["Location"]
    assert client.get(f"/api/v1/products/{p.id}/").get_json()["quantity_in_stock"] == 7
    assert client.get("/api/v1/orders/", headers=headers).get_json()["count"] == 1


def test_the_same_key_with_another_body_is_a_422(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=10)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "tap-43"}
    client.post("/api/v1/orders/", json=f.order_body((p.id, 3)), headers=headers)
    other = client.post("/api/v1/orders/", json=f.order_body((p.id, 4)), headers=headers)
    assert other.status_code == 422
    assert other.get_json()["code"] == "idempotency_key_reused"
    assert client.get(f"/api/v1/products/{p.id}/").get_json()["quantity_in_stock"] == 7


def test_keys_belong_to_one_customer(client: FlaskClient, container: Container, uow: Any) -> None:
    p = f.product(uow, stock=10)
    for _ in range(2):
        headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "same"}
        response = client.post("/api/v1/orders/", json=f.order_body((p.id, 1)), headers=headers)
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert client.get(f"/api/v1/products/{p.id}/").get_json()["quantity_in_stock"] == 8


def test_a_failed_attempt_is_not_stored_so_a_retry_checks_stock_again(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=1)
    staff = f.bearer(client, f.user(container, staff=True).username)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "k-1"}
    refused = client.post("/api/v1/orders/", json=f.order_body((p.id, 2)), headers=headers)
    assert refused.status_code == 409
    client.post(f"/api/v1/products/{p.id}/restock/", json={"quantity": 5}, headers=staff)
    retry = client.post("/api/v1/orders/", json=f.order_body((p.id, 2)), headers=headers)
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers


def test_an_invalid_key_is_a_422(client: FlaskClient, container: Container, uow: Any) -> None:
    p = f.product(uow, stock=1)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "x" * 256}
    response = client.post("/api/v1/orders/", json=f.order_body((p.id, 1)), headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["location"] == "headers"


def test_a_key_of_only_spaces_is_refused_rather_than_silently_used(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=1)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "   "}
    response = client.post("/api/v1/orders/", json=f.order_body((p.id, 1)), headers=headers)
    assert response.status_code == 422
    assert client.get(f"/api/v1/products/{p.id}/").get_json()["quantity_in_stock"] == 1
