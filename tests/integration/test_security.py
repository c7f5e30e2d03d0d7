"""OWASP API Security Top 10 (2023), the items that apply to this service, over HTTP.

API1 broken object level authorization, API2 broken authentication, API3 broken object property
level authorization, API4 unrestricted resource consumption, API5 broken function level
authorization, API8 security misconfiguration. (API6 business flows, API7 SSRF, API9 inventory
and API10 unsafe consumption of third-party APIs have nothing here to test: no outbound calls,
one documented version.)
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from dependency_injector import providers
from flask import Flask
from flask.testing import FlaskClient
from jwt.warnings import InsecureKeyLengthWarning

from opply.adapters.passwords import Argon2PasswordHasher
from opply.application.dto import NewUser
from opply.application.users import CreateUser
from opply.domain.errors import WeakPassword
from opply.entrypoints.app import create_app
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import TEST_SECRET, Database, make_settings

PROBLEM = "application/problem+json"


def _app(database: Database, container: Container, **overrides: Any) -> Flask:
    return create_app(make_settings(database, **overrides), container=container)


def _is_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["code"] == code


# --- API1: broken object level authorization ----------------------------------------------------


def test_every_order_path_answers_another_customers_order_exactly_like_a_missing_one(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    product = f.product(uow, stock=10)
    alice, mallory = f.user(container), f.user(container)
    alice_headers = f.bearer(client, alice.username)
    mallory_headers = f.bearer(client, mallory.username)
    order = client.post(
        "/api/v1/orders/", json=f.order_body((product.id, 2)), headers=alice_headers
    ).get_json()
    missing_id = order["id"] + 10_000

    for method, template in (
        ("GET", "/api/v1/orders/{}/"),
        ("POST", "/api/v1/orders/{}/cancel/"),
    ):
        theirs = client.open(template.format(order["id"]), method=method, headers=mallory_headers)
        missing = client.open(template.format(missing_id), method=method, headers=mallory_headers)
        assert theirs.status_code == missing.status_code == 404
        as_seen = theirs.get_json()
        as_missing = missing.get_json()
        # The same answer, but for the id echoed in the detail.
        assert as_seen["detail"].replace(str(order["id"]), "N") == as_missing["detail"].replace(
            str(missing_id), "N"
        )
        assert {k: v for k, v in as_seen.items() if k != "detail"} == {
            k: v for k, v in as_missing.items() if k != "detail"
        }

    assert client.get("/api/v1/orders/", headers=mallory_headers).get_json()["count"] == 0
    # Mallory's cancel changed nothing: the order is still placed and the stock still taken.
    still = client.get(f"/api/v1/orders/{order['id']}/", headers=alice_headers).get_json()
    assert still["status"] == "placed"
    assert client.get(f"/api/v1/products/{product.id}/").get_json()["quantity_in_stock"] == 8


# --- API2: broken authentication ----------------------------------------------------------------


def _claims(user_id: int, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "opply",
        "sub": str(user_id),
        "type": "access",
        "staff": False,
        "fam": "a-login-never-revoked",
        "ver": 0,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    )


def _signed_with(claims: dict[str, Any], algorithm: str) -> str:
    """Our own key, another algorithm (PyJWT warns the key is short for it: it is a forgery)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, TEST_SECRET, algorithm=algorithm)


def _orders_with(client: FlaskClient, token: str) -> Any:
    return client.get("/api/v1/orders/", headers={"Authorization": f"Bearer {token}"})


def test_a_token_we_signed_ourselves_with_the_right_claims_is_accepted(
    client: FlaskClient, container: Container
) -> None:
    # The baseline for the refusals below: only the one thing each of them changes is wrong.
    customer = f.user(container)
    token = jwt.encode(_claims(customer.id), TEST_SECRET, algorithm="HS256")
    assert _orders_with(client, token).status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c: _unsigned({"alg": "none", "typ": "JWT"}, c), id="alg-none"),
        pytest.param(lambda c: _unsigned({"alg": "None", "typ": "JWT"}, c), id="alg-None"),
        pytest.param(lambda c: _signed_with(c, "HS512"), id="HS512"),
        pytest.param(lambda c: _signed_with(c, "HS384"), id="HS384"),
        pytest.param(
            lambda c: _unsigned({"alg": "RS256", "typ": "JWT"}, c, b"\x01" * 256), id="RS256"
        ),
        pytest.param(
            lambda c: jwt.encode(c, "another-secret-that-is-long-enough-0123456789"),
            id="other-key",
        ),
        pytest.param(lambda c: jwt.encode(c, TEST_SECRET)[:-4] + "AAAA", id="bad-signature"),
    ],
)
def test_tokens_not_signed_with_our_key_and_hs256_are_refused(
    client: FlaskClient, container: Container, forge: Callable[[dict[str, Any]], str]
) -> None:
    customer = f.user(container)
    answer = _orders_with(client, forge(_claims(customer.id)))
    _is_problem(answer, 401, "invalid_token")
    assert "invalid_token" in answer.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"iss": "someone-else"}, id="wrong-iss"),
        pytest.param({"exp": int(time.time()) - 60, "iat": int(time.time()) - 960}, id="expired"),
        pytest.param({"type": "refresh"}, id="type-refresh"),
        pytest.param({"type": "admin"}, id="type-unknown"),
        pytest.param({"sub": "not-a-number"}, id="sub-not-an-id"),
        pytest.param({"sub": "999999"}, id="sub-no-such-user"),
        pytest.param({"ver": 1}, id="ver-not-the-users"),
        pytest.param({"ver": "0"}, id="ver-not-a-number"),
        pytest.param({"fam": ""}, id="fam-empty"),
        *(
            pytest.param({claim: None}, id=f"no-{claim}")
            for claim in ("exp", "iat", "iss", "sub", "jti", "type", "fam", "ver")
        ),
    ],
)
def test_tokens_with_wrong_or_missing_claims_are_refused(
    client: FlaskClient, container: Container, changes: dict[str, Any]
) -> None:
    customer = f.user(container)
    token = jwt.encode(_claims(customer.id, **changes), TEST_SECRET, algorithm="HS256")
    _is_problem(_orders_with(client, token), 401, "invalid_token")


def test_a_token_expired_within_the_ten_second_leeway_still_works_and_beyond_it_does_not(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    now = int(time.time())
    just = jwt.encode(_claims(customer.id, iat=now - 900, exp=now - 3), TEST_SECRET)
    assert _orders_with(client, just).status_code == 200
    beyond = jwt.encode(_claims(customer.id, iat=now - 900, exp=now - 30), TEST_SECRET)
    answer = _orders_with(client, beyond)
    _is_problem(answer, 401, "invalid_token")
    assert "expired" in answer.get_json()["detail"]


def test_a_deactivated_users_tokens_stop_working_at_once(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    tokens = f.login(client, customer.username)
    assert _orders_with(client, tokens["access"]).status_code == 200
    container.set_user_active()(customer.username, False)
    _is_problem(_orders_with(client, tokens["access"]), 401, "invalid_token")
    refreshed = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    _is_problem(refreshed, 401, "invalid_token")
    login = client.post("/api/token/", json={"username": customer.username, "password": f.PASSWORD})
    _is_problem(login, 401, "invalid_credentials")


def test_a_refresh_token_is_no_access_token_and_an_access_token_is_no_refresh_token(
    client: FlaskClient, container: Container
) -> None:
    tokens = f.login(client, f.user(container).username)
    _is_problem(_orders_with(client, tokens["refresh"]), 401, "invalid_token")
    for path in ("/api/token/refresh/", "/api/token/revoke/"):
        _is_problem(client.post(path, json={"refresh": tokens["access"]}), 401, "invalid_token")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer    ", id="blank-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer not.a.jwt", id="not-a-jwt"),
        pytest.param("Bearer " + "A" * 20_000, id="very-long"),
        pytest.param("Bearer " + ".".join(["eyJ" + "A" * 3000] * 3), id="long-jwt-shape"),
        pytest.param("Bearer \xff\xfe\xfd", id="latin-1-bytes"),
        pytest.param("Bearer a b c", id="spaces"),
    ],
)
def test_garbage_authorization_headers_get_a_401_problem_never_a_500(
    client: FlaskClient, header: str
) -> None:
    answer = client.get("/api/v1/orders/", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.mimetype == PROBLEM
    assert answer.get_json()["code"] in ("not_authenticated", "invalid_token")


def test_a_password_hashed_with_weaker_parameters_is_upgraded_on_the_next_login(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    weak = Argon2PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    CreateUser(uow, weak)(NewUser(username="legacy-user", password=f.PASSWORD))

    def stored_hash() -> str:
        with uow.read() as reads:
            found = reads.credentials("legacy-user")
        assert found is not None
        return found.password_hash

    before = stored_hash()
    assert "m=64," in before

    wrong = client.post("/api/token/", json={"username": "legacy-user", "password": "nope-nope"})
    assert wrong.status_code == 401
    assert stored_hash() == before  # a wrong password never rewrites the hash

    f.login(client, "legacy-user")
    after = stored_hash()
    assert after != before
    assert not container.password_hasher().needs_rehash(after)
    f.login(client, "legacy-user")  # and the upgraded hash still takes the same password


@pytest.mark.parametrize("password", ["short", "password123", "PASSWORD123", "qwertyuiop"])
def test_new_accounts_refuse_short_and_common_passwords(
    container: Container, password: str
) -> None:
    with pytest.raises(WeakPassword):
        container.create_user()(NewUser(username=f"new{uuid.uuid4().hex[:8]}", password=password))


# --- API3: broken object property level authorization (mass assignment) -------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"status": "cancelled"},
        {"total": "0.01"},
        {"customer_id": 1},
        {"id": 1},
        {"created_at": "2020-01-01T00:00:00+00:00"},
        {"currency": "XXX"},
    ],
)
def test_a_customer_cannot_set_server_owned_order_fields(
    client: FlaskClient, container: Container, uow: Any, extra: dict[str, Any]
) -> None:
    product = f.product(uow, stock=5)
    headers = f.bearer(client, f.user(container).username)
    body = {**f.order_body((product.id, 1)), **extra}
    answer = client.post("/api/v1/orders/", json=body, headers=headers)
    _is_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.get_json()["errors"]] == list(extra)
    assert client.get("/api/v1/orders/", headers=headers).get_json()["count"] == 0
    assert client.get(f"/api/v1/products/{product.id}/").get_json()["quantity_in_stock"] == 5


@pytest.mark.parametrize(
    "extra", [{"unit_price": "0.01"}, {"line_total": "0.01"}, {"product_name": "Gold"}]
)
def test_a_customer_cannot_set_the_price_or_name_on_an_order_line(
    client: FlaskClient, container: Container, uow: Any, extra: dict[str, Any]
) -> None:
    product = f.product(uow, stock=5)
    headers = f.bearer(client, f.user(container).username)
    body = {"lines": [{"product_id": product.id, "quantity": 1, **extra}]}
    answer = client.post("/api/v1/orders/", json=body, headers=headers)
    _is_problem(answer, 422, "validation_error")
    assert answer.get_json()["errors"][0]["field"] == f"lines.0.{next(iter(extra))}"


def test_staff_cannot_set_a_products_id_either(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    product = f.product(uow)
    headers = f.bearer(client, f.user(container, staff=True).username)
    created = client.post(
        "/api/v1/products/",
        json={"id": 999, "name": "X", "price": "1.00", "quantity_in_stock": 1},
        headers=headers,
    )
    _is_problem(created, 422, "validation_error")
    patched = client.patch(
        f"/api/v1/products/{product.id}/", json={"id": 999, "price": "1.00"}, headers=headers
    )
    _is_problem(patched, 422, "validation_error")


# --- API4: unrestricted resource consumption ----------------------------------------------------


def test_a_body_over_one_mebibyte_is_a_413_problem(
    client: FlaskClient, container: Container
) -> None:
    headers = f.bearer(client, f.user(container).username)
    big = b'{"lines": [' + b" " * (1024 * 1024) + b"]}"
    answer = client.post(
        "/api/v1/orders/", data=big, content_type="application/json", headers=headers
    )
    _is_problem(answer, 413, "payload_too_large")
    login = client.post("/api/token/", data=big, content_type="application/json")
    _is_problem(login, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/api/v1/products/", "/api/v1/orders/"])
def test_page_size_is_at_most_100_and_more_is_a_422_not_a_silent_cap(
    client: FlaskClient, container: Container, path: str
) -> None:
    headers = f.bearer(client, f.user(container).username)
    assert client.get(f"{path}?page_size=100", headers=headers).status_code == 200
    too_many = client.get(f"{path}?page_size=101", headers=headers)
    _is_problem(too_many, 422, "validation_error")
    assert too_many.get_json()["errors"][0]["field"] == "page_size"
    _is_problem(client.get(f"{path}?page=10000001", headers=headers), 422, "validation_error")


def test_an_order_has_at_most_100_lines(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    headers = f.bearer(client, f.user(container).username)
    body = f.order_body(*((n, 1) for n in range(1, 102)))
    answer = client.post("/api/v1/orders/", json=body, headers=headers)
    _is_problem(answer, 422, "validation_error")
    assert answer.get_json()["errors"][0]["field"] == "lines"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/token/", {"username": "u" * 151, "password": "p"}, "username"),
        ("POST", "/api/token/", {"username": "u", "password": "p" * 1025}, "password"),
        ("POST", "/api/token/refresh/", {"refresh": "r" * 4097}, "refresh"),
        ("POST", "/api/token/revoke/", {"refresh": "r" * 4097}, "refresh"),
        ("POST", "/api/v1/products/", {"name": "n" * 10_000, "price": "1.00"}, "name"),
        ("POST", "/api/v1/products/", {"name": "n", "price": "1" * 5000}, "price"),
    ],
)
def test_every_string_a_client_sends_has_a_length_bound(
    client: FlaskClient,
    container: Container,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    headers = f.bearer(client, f.user(container, staff=True).username)
    answer = client.open(path, method=method, json=body, headers=headers)
    _is_problem(answer, 422, "validation_error")
    assert answer.get_json()["errors"][0]["field"] == field


def test_search_and_idempotency_keys_have_length_bounds_too(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    _is_problem(client.get(f"/api/v1/products/?search={'s' * 101}"), 422, "validation_error")
    product = f.product(uow)
    headers = f.bearer(client, f.user(container).username)
    answer = client.post(
        "/api/v1/orders/",
        json=f.order_body((product.id, 1)),
        headers={**headers, "Idempotency-Key": "k" * 256},
    )
    _is_problem(answer, 422, "validation_error")


def _login(client: FlaskClient, username: Any, address: str = "203.0.113.7") -> Any:
    return client.post(
        "/api/token/",
        json={"username": username, "password": "wrong-password"},
        environ_base={"REMOTE_ADDR": address},
    )


def _assert_rate_limited(answer: Any, limit: int) -> None:
    _is_problem(answer, 429, "rate_limited")
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert answer.headers["RateLimit-Limit"] == str(limit)
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(answer.headers["RateLimit-Reset"]) <= 60
    assert f"{limit};w=60" in answer.headers["RateLimit-Policy"]


def test_login_attempts_are_limited_per_username_whatever_the_address(
    database: Database, container: Container
) -> None:
    client = _app(database, container, login_rate_limit="3/minute").test_client()
    answers = [_login(client, "victim", address=f"198.51.100.{n}") for n in range(1, 5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[0].headers["RateLimit-Remaining"] == "2"
    _assert_rate_limited(answers[3], 3)
    # The same username in other letter cases is the same username.
    _assert_rate_limited(_login(client, "VICTIM", address="198.51.100.99"), 3)
    # Another username is not held back.
    assert _login(client, "someone-else").status_code == 401


def test_login_attempts_are_limited_per_client_address_whatever_the_username(
    database: Database, container: Container
) -> None:
    client = _app(database, container, login_address_rate_limit="3/minute").test_client()
    assert [_login(client, f"user{n}").status_code for n in range(3)] == [401, 401, 401]
    _assert_rate_limited(_login(client, "user-4"), 3)
    # Bodies that name no username count against the address just the same.
    garbage = client.post(
        "/api/token/",
        data="not json",
        content_type="application/json",
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    _assert_rate_limited(garbage, 3)
    assert _login(client, "user-5", address="192.0.2.1").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2, 3]", id="a-list"),
        pytest.param(b'{"username": 42, "password": "x"}', id="username-a-number"),
        pytest.param(b'{"username": "", "password": "x"}', id="username-empty"),
        pytest.param(b'{"username": {"a": 1}, "password": "x"}', id="username-an-object"),
    ],
)
def test_a_login_body_without_a_usable_username_is_answered_not_crashed(
    database: Database, container: Container, body: bytes
) -> None:
    client = _app(database, container, login_rate_limit="1/minute").test_client()
    for _ in range(3):  # no per-username count, so never a 429 here
        answer = client.post("/api/token/", data=body, content_type="application/json")
        assert answer.status_code in (400, 422)
        assert answer.mimetype == PROBLEM


def test_refreshing_is_limited_per_client_address(database: Database, container: Container) -> None:
    client = _app(database, container, refresh_rate_limit="2/minute").test_client()
    answers = [client.post("/api/token/refresh/", json={"refresh": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    _assert_rate_limited(answers[2], 2)


def test_rate_limits_can_be_switched_off(database: Database, container: Container) -> None:
    client = _app(
        database, container, login_rate_limit="1/minute", ratelimit_enabled=False
    ).test_client()
    assert [_login(client, "victim").status_code for _ in range(3)] == [401, 401, 401]
    assert "RateLimit-Limit" not in _login(client, "victim").headers


REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL (redis://...) to test Redis")
def test_with_redis_every_process_shares_the_same_login_counts(
    database: Database, container: Container
) -> None:
    assert REDIS_URL is not None
    settings = {"ratelimit_storage_uri": REDIS_URL, "login_rate_limit": "2/minute"}
    # Two apps stand for two worker processes: each has its own Limiter, Redis holds the count.
    first = _app(database, container, **settings).test_client()
    second = _app(database, container, **settings).test_client()
    username = f"victim-{uuid.uuid4().hex}"
    assert _login(first, username).status_code == 401
    assert _login(second, username).status_code == 401
    _assert_rate_limited(_login(first, username), 2)
    _assert_rate_limited(_login(second, username), 2)


def test_an_unreachable_rate_limit_store_does_not_take_logins_down(
    database: Database, container: Container
) -> None:
    client = _app(
        database,
        container,
        ratelimit_storage_uri="redis://127.0.0.1:1/0",  # nothing listens on port 1
        login_rate_limit="2/minute",
    ).test_client()
    # The limits carry on in memory.
    assert [_login(client, "victim").status_code for _ in range(3)] == [401, 401, 429]


def test_an_invalid_rate_limit_setting_stops_the_app_from_starting(
    database: Database, container: Container
) -> None:
    from opply.entrypoints.config import ConfigError

    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT"):
        _app(database, container, login_rate_limit="lots")


# --- API5: broken function level authorization --------------------------------------------------


def test_a_customer_gets_403_on_every_staff_operation_and_nothing_changes(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    product = f.product(uow, price="10.00", stock=5)
    headers = f.bearer(client, f.user(container).username)
    for method, path, body in (
        ("POST", "/api/v1/products/", {"name": "Mine", "price": "0.01"}),
        ("PATCH", f"/api/v1/products/{product.id}/", {"price": "0.01"}),
        ("POST", f"/api/v1/products/{product.id}/restock/", {"quantity": 1000}),
    ):
        _is_problem(
            client.open(path, method=method, json=body, headers=headers), 403, "permission_denied"
        )
    after = client.get(f"/api/v1/products/{product.id}/").get_json()
    assert (after["price"], after["quantity_in_stock"]) == ("10.00", 5)
    assert client.get("/api/v1/products/").get_json()["count"] == 1


def test_anonymous_callers_get_401_on_every_customer_and_staff_operation(
    client: FlaskClient, uow: Any
) -> None:
    product = f.product(uow)
    for method, path in (
        ("GET", "/api/v1/orders/"),
        ("POST", "/api/v1/orders/"),
        ("GET", "/api/v1/orders/1/"),
        ("POST", "/api/v1/orders/1/cancel/"),
        ("POST", "/api/v1/products/"),
        ("PATCH", f"/api/v1/products/{product.id}/"),
        ("POST", f"/api/v1/products/{product.id}/restock/"),
    ):
        answer = client.open(path, method=method, json={})
        _is_problem(answer, 401, "not_authenticated")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


# --- API8: security misconfiguration ------------------------------------------------------------


def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(
    database: Database, container: Container
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    # Overridden before the app is built: the app takes its use cases when it is wired.
    with container.list_products.override(providers.Object(explode)):
        answer = _app(database, container).test_client().get("/api/v1/products/")
    _is_problem(answer, 500, "internal_error")
    text = answer.get_data(as_text=True)
    for leak in ("Traceback", "hunter2", "RuntimeError", "File ", ".py"):
        assert leak not in text


def test_a_production_app_is_never_in_debug_mode(
    database: Database, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = _app(database, container, env="production")
    assert app.debug is False
    assert app.config["PROPAGATE_EXCEPTIONS"] is False


def test_production_refuses_to_start_with_a_short_secret_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opply.entrypoints.config import ConfigError

    monkeypatch.setenv("OPPLY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env(load_dotenv_file=False)


def test_unknown_paths_and_methods_answer_with_problems_not_html(client: FlaskClient) -> None:
    _is_problem(client.get("/api/v1/nothing-here/"), 404, "not_found")
    _is_problem(client.get("/api/v1/products/0/"), 404, "not_found")
    _is_problem(client.get(f"/api/v1/products/{2**63}/"), 404, "not_found")
    not_allowed = client.delete("/api/v1/products/")
    _is_problem(not_allowed, 405, "method_not_allowed")
    assert "GET" in not_allowed.headers["Allow"]


def test_api_answers_carry_the_security_headers(client: FlaskClient) -> None:
    answer = client.get("/api/v1/products/")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    error = client.get("/api/v1/nothing-here/")
    assert error.headers["X-Content-Type-Options"] == "nosniff"
