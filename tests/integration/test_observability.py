"""What an operator and a browser see around every request: request ids, the JSON request log,
security headers, CORS, proxies, the body limit and the Prometheus metrics."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from opply.adapters.sql_uow import SqlUnitOfWork
from opply.entrypoints.app import create_app
from opply.entrypoints.container import Container
from opply.entrypoints.observability import route_template
from tests.integration import factories as f
from tests.integration.conftest import Database, make_settings

MIB = 1024 * 1024


def _app(database: Database, container: Container, **overrides: Any) -> Flask:
    return create_app(make_settings(database, **overrides), container=container)


def _request_lines(captured: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "opply.request"]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- request ids and the request log ------------------------------------------------------------


def test_a_plain_client_request_id_is_echoed_in_the_response(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "phone-42.retry_1"})

    assert response.headers["X-Request-ID"] == "phone-42.retry_1"


@pytest.mark.parametrize(
    "bad_id", ["x" * 129, "has space", "<script>", "semi;colon", "ümlaut"], ids=repr
)
def test_an_unsafe_request_id_is_replaced_by_a_generated_one(
    client: FlaskClient, bad_id: str
) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad_id})

    echoed = response.headers["X-Request-ID"]
    assert echoed != bad_id
    assert len(echoed) == 32
    assert echoed.isalnum()


def test_without_a_request_id_each_response_gets_its_own(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]

    assert first != second


def test_each_request_is_logged_as_one_json_line_with_user_and_without_secrets(
    client: FlaskClient, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = f.user(container)
    tokens = f.login(client, customer.username)
    capsys.readouterr()

    response = client.get(
        "/api/v1/orders/?page=1",
        headers={"Authorization": f"Bearer {tokens['access']}", "X-Request-ID": "req-orders-1"},
    )

    assert response.status_code == 200
    captured = capsys.readouterr().out
    (line,) = _request_lines(captured)
    assert line["request_id"] == "req-orders-1"
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/orders/"
    assert line["route"] == "/api/v1/orders/"
    assert line["status"] == 200
    assert line["user_id"] == customer.id
    assert isinstance(line["duration_ms"], float)
    assert tokens["access"] not in captured
    assert "page=1" not in captured


def test_a_login_is_logged_without_the_password_or_the_tokens(
    client: FlaskClient, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = f.user(container)
    capsys.readouterr()

    tokens = f.login(client, customer.username)

    captured = capsys.readouterr().out
    (line,) = _request_lines(captured)
    assert line["path"] == "/api/token/"
    assert line["status"] == 200
    assert f.PASSWORD not in captured
    assert tokens["access"] not in captured
    assert tokens["refresh"] not in captured


# --- security headers, HSTS and proxies ---------------------------------------------------------


def test_every_response_carries_the_security_headers(client: FlaskClient) -> None:
    for response in (client.get("/healthz"), client.get("/api/v1/products/999999/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_hsts_is_sent_only_in_production_over_https(
    database: Database, container: Container
) -> None:
    production = _app(database, container, env="production").test_client()
    development = _app(database, container, env="development").test_client()

    over_https = production.get("/healthz", base_url="https://api.opply.example")
    over_http = production.get("/healthz", base_url="http://api.opply.example")
    dev_https = development.get("/healthz", base_url="https://api.opply.example")

    assert over_https.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in over_http.headers
    assert "Strict-Transport-Security" not in dev_https.headers


def test_behind_a_trusted_load_balancer_the_forwarded_scheme_and_client_are_believed(
    database: Database, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _app(database, container, env="production", trusted_proxy_hops=1).test_client()
    capsys.readouterr()

    response = client.get(
        "/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    )

    assert "Strict-Transport-Security" in response.headers
    (line,) = _request_lines(capsys.readouterr().out)
    assert line["remote_addr"] == "203.0.113.9"


def test_behind_a_load_balancer_a_client_sent_forwarded_host_never_reaches_the_page_links(
    database: Database, container: Container, uow: SqlUnitOfWork
) -> None:
    f.product(uow)
    f.product(uow)
    client = _app(database, container, env="production", trusted_proxy_hops=1).test_client()

    page = client.get(
        "/api/v1/products/?page_size=1",
        base_url="http://api.opply.example",
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Port": "4443",
        },
    ).get_json()

    assert page["next"].startswith("https://api.opply.example/api/v1/products/?")
    assert "evil.example" not in page["next"]
    assert "4443" not in page["next"]


def test_without_trusted_proxies_forwarded_headers_are_ignored(
    database: Database, container: Container
) -> None:
    client = _app(database, container, env="production").test_client()

    response = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})

    assert "Strict-Transport-Security" not in response.headers


# --- CORS ---------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://shop.opply.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def test_cors_is_closed_by_default(client: FlaskClient) -> None:
    preflight = client.options("/api/v1/orders/", headers=PREFLIGHT)
    simple = client.get("/api/v1/products/", headers={"Origin": "https://shop.opply.example"})

    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in simple.headers


def test_an_allowed_origin_may_call_the_api_from_a_browser(
    database: Database, container: Container
) -> None:
    client = _app(database, container, cors_origins=("https://shop.opply.example",)).test_client()

    preflight = client.options("/api/v1/orders/", headers=PREFLIGHT)
    simple = client.get("/api/v1/products/", headers={"Origin": "https://shop.opply.example"})

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.opply.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key"):
        assert header in allowed_headers
    assert simple.headers["Access-Control-Allow-Origin"] == "https://shop.opply.example"
    exposed = simple.headers["Access-Control-Expose-Headers"].split(", ")
    # Every header the document declares, so a browser client can read what it was promised.
    assert {"ETag", "Location", "Idempotent-Replayed", "Retry-After", "RateLimit-Remaining"} <= set(
        exposed
    )
    assert "Origin" in simple.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in simple.headers


def test_an_origin_outside_the_allow_list_gets_no_cors_headers(
    database: Database, container: Container
) -> None:
    client = _app(database, container, cors_origins=("https://shop.opply.example",)).test_client()

    preflight = client.options(
        "/api/v1/orders/", headers={**PREFLIGHT, "Origin": "https://evil.example"}
    )

    assert "Access-Control-Allow-Origin" not in preflight.headers


# --- the 1 MiB body limit -----------------------------------------------------------------------


def _assert_payload_too_large(response: Any) -> None:
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "payload_too_large"


def test_a_body_over_one_mebibyte_is_refused_with_413(client: FlaskClient) -> None:
    body = b'{"username": "' + b"a" * MIB + b'", "password": "x"}'

    response = client.post("/api/token/", data=body, content_type="application/json")

    _assert_payload_too_large(response)


def test_a_chunked_body_over_one_mebibyte_is_refused_with_413(client: FlaskClient) -> None:
    body = b'{"username": "' + b"a" * MIB + b'", "password": "x"}'

    response = client.post(
        "/api/token/",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        # What a server does for a chunked request: no length, the stream ends itself.
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )

    _assert_payload_too_large(response)


def test_a_chunked_body_over_the_limit_is_ignored_where_no_body_is_read(
    client: FlaskClient,
) -> None:
    # As a declared Content-Length over the limit is: only reading the body is refused.
    response = client.get(
        "/healthz",
        input_stream=io.BytesIO(b"x" * (MIB + 1)),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_a_small_chunked_body_is_read_as_usual(client: FlaskClient, container: Container) -> None:
    customer = f.user(container)
    body = json.dumps({"username": customer.username, "password": f.PASSWORD}).encode()

    response = client.post(
        "/api/token/",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )

    assert response.status_code == 200
    assert set(response.get_json()) == {"access", "refresh"}


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_status(client: FlaskClient, uow: Any) -> None:
    product = f.product(uow)
    labels = {"method": "GET", "route": "/api/v1/products/{product_id}/", "status": "200"}
    before = _sample("opply_http_requests_total", **labels)

    client.get(f"/api/v1/products/{product.id}/")
    client.get(f"/api/v1/products/{product.id}")
    exposition = client.get("/metrics")

    assert exposition.status_code == 200
    assert exposition.mimetype == "text/plain"
    assert _sample("opply_http_requests_total", **labels) == before + 2
    assert _sample("opply_http_request_duration_seconds_count", **labels) >= 2
    text = exposition.get_data(as_text=True)
    assert 'route="/api/v1/products/{product_id}/"' in text
    assert f'route="/api/v1/products/{product.id}/"' not in text


def test_metrics_count_orders_placed_and_out_of_stock_refusals(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    product = f.product(uow, stock=3)
    headers = {**f.bearer(client, f.user(container).username), "Idempotency-Key": "metrics-1"}
    placed_before = _sample("opply_orders_placed_total")
    refused_before = _sample("opply_orders_out_of_stock_total")

    first = client.post("/api/v1/orders/", json=f.order_body((product.id, 2)), headers=headers)
    replay = client.post("/api/v1/orders/", json=f.order_body((product.id, 2)), headers=headers)
    short = client.post(
        "/api/v1/orders/",
        json=f.order_body((product.id, 5)),
        headers={"Authorization": headers["Authorization"]},
    )

    assert (first.status_code, replay.status_code, short.status_code) == (201, 201, 409)
    assert _sample("opply_orders_placed_total") == placed_before + 1
    assert _sample("opply_orders_out_of_stock_total") == refused_before + 1


def test_metrics_are_not_part_of_the_mobile_api_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    assert "/metrics" not in paths
    assert "/healthz" in paths


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ("/api/v1/products/", "/api/v1/products/"),
        (
            "/api/v1/orders/<int(min=1, max=2147483647):order_id>/cancel/",
            "/api/v1/orders/{order_id}/cancel/",
        ),
        ("/admin/<path:rest>", "/admin/{rest}"),
        ("/x/<name>", "/x/{name}"),
    ],
)
def test_route_labels_read_like_the_openapi_paths(rule: str, label: str) -> None:
    assert route_template(rule) == label
