"""Logging in, rotating and revoking tokens over HTTP."""

from __future__ import annotations

from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f


def test_login_returns_an_access_and_a_refresh_token_that_work(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    tokens = f.login(client, customer.username)
    assert set(tokens) == {"access", "refresh"}
    orders = client.get("/api/v1/orders/", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert orders.status_code == 200
    as_access = client.get(
        "/api/v1/orders/", headers={"Authorization": f"Bearer {tokens['refresh']}"}
    )
    assert as_access.status_code == 401
    assert as_access.get_json()["code"] == "invalid_token"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    wrong = client.post("/api/token/", json={"username": customer.username, "password": "nope"})
    unknown = client.post("/api/token/", json={"username": "nobody-here", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["code"] == "invalid_credentials"


def test_login_body_must_be_complete(client: FlaskClient) -> None:
    response = client.post("/api/token/", json={"username": "x"})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "password"


def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    first = f.login(client, customer.username)
    rotated = client.post("/api/token/refresh/", json={"refresh": first["refresh"]})
    assert rotated.status_code == 200
    second = rotated.get_json()
    assert second["refresh"] != first["refresh"]
    assert (
        client.get(
            "/api/v1/orders/", headers={"Authorization": f"Bearer {second['access']}"}
        ).status_code
        == 200
    )
    replay = client.post("/api/token/refresh/", json={"refresh": first["refresh"]})
    assert replay.status_code == 401
    # The replay revoked the whole family: the newest refresh token is dead as well.
    after = client.post("/api/token/refresh/", json={"refresh": second["refresh"]})
    assert after.status_code == 401


def test_an_access_token_is_not_a_refresh_token(client: FlaskClient, container: Container) -> None:
    tokens = f.login(client, f.user(container).username)
    response = client.post("/api/token/refresh/", json={"refresh": tokens["access"]})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_token"


def test_revoke_logs_out_every_rotation_of_the_login(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    first = f.login(client, customer.username)
    second = client.post("/api/token/refresh/", json={"refresh": first["refresh"]}).get_json()
    other_login = f.login(client, customer.username)
    revoked = client.post("/api/token/revoke/", json={"refresh": second["refresh"]})
    assert revoked.status_code == 204
    assert revoked.data == b""
    assert (
        client.post("/api/token/refresh/", json={"refresh": second["refresh"]}).status_code == 401
    )
    # Another login (another device) is not affected.
    still = client.post("/api/token/refresh/", json={"refresh": other_login["refresh"]})
    assert still.status_code == 200


def test_a_deactivated_customer_can_no_longer_log_in_or_use_a_token(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    tokens = f.login(client, customer.username)
    container.set_user_active()(customer.username, False)
    assert (
        client.post(
            "/api/token/", json={"username": customer.username, "password": f.PASSWORD}
        ).status_code
        == 401
    )
    response = client.get(
        "/api/v1/orders/", headers={"Authorization": f"Bearer {tokens['access']}"}
    )
    assert response.status_code == 401
    assert (
        client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 401
    )
