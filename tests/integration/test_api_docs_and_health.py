"""The OpenAPI document, the Swagger UI served offline, probes, and HTTP conventions."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

from flask.testing import FlaskClient

CONTRACT_OPERATIONS = {
    ("post", "/api/token/"),
    ("post", "/api/token/refresh/"),
    ("post", "/api/token/revoke/"),
    ("get", "/api/v1/products/"),
    ("post", "/api/v1/products/"),
    ("get", "/api/v1/products/{product_id}/"),
    ("patch", "/api/v1/products/{product_id}/"),
    ("post", "/api/v1/products/{product_id}/restock/"),
    ("get", "/api/v1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/{order_id}/"),
    ("post", "/api/v1/orders/{order_id}/cancel/"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


def test_the_openapi_document_describes_every_operation_of_the_contract(
    client: FlaskClient,
) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    operations = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert operations >= CONTRACT_OPERATIONS
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    order_post = spec["paths"]["/api/v1/orders/"]["post"]
    assert order_post["security"] == [{"bearerAuth": []}]
    assert {"201", "401", "409", "422"} <= set(order_post["responses"])
    assert order_post["summary"].startswith("Place an order")
    # Every error answer of every operation is documented as a problem with its codes.
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    where = f"{method.upper()} {path} {status}"
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], where
                    codes = content["application/problem+json"]["schema"]["allOf"][1]
                    assert codes["properties"]["code"]["enum"], where
    assert "components" in spec
    assert "responses" not in spec["components"]  # no catch-all component left unused


def test_swagger_ui_is_served_from_the_app_itself(client: FlaskClient) -> None:
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/docs/static/"), f"{asset} is not served by the app"
        with client.get(asset) as response:
            assert response.status_code == 200
            assert len(response.get_data()) > 1000


def test_probes_answer_and_health_names_the_release_that_answers(client: FlaskClient) -> None:
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = {"status": "ok", "version": metadata.version("opply"), "commit": head}

    assert client.get("/healthz").get_json() == expected
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_the_openapi_document_describes_the_release_in_the_health_answer(
    client: FlaskClient,
) -> None:
    spec = client.get("/openapi.json").get_json()
    answer = spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = answer["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]

    assert set(schema["required"]) == {"status", "version", "commit"}


def test_paths_without_the_trailing_slash_are_answered_without_a_redirect(
    client: FlaskClient,
) -> None:
    response = client.post("/api/token", json={"username": "x", "password": "y"})
    assert response.status_code == 401
    assert client.get("/api/v1/products").status_code == 200


def test_unknown_paths_and_methods_are_problems(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here/")
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    wrong_method = client.delete("/api/v1/products/")
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert wrong_method.get_json()["code"] == "method_not_allowed"


def test_malformed_json_is_a_400_problem(client: FlaskClient) -> None:
    response = client.post("/api/token/", data="{oops", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_request"
