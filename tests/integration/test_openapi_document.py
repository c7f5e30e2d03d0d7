"""The served OpenAPI document as a client generator reads it: valid, with no component it does
not use, examples that fit their schemas, and what tells a client where and how to call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from tests.integration.conftest import Database


@pytest.fixture
def database(sqlite_database: Database) -> Database:
    return sqlite_database


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").get_json()
    return document


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_component_is_used(spec: dict[str, Any]) -> None:
    # flask-smorest's own PaginationMetadata and Error schemas would be emitted by every
    # generator as dead types (api/__init__.py keeps them out).
    text = json.dumps({k: v for k, v in spec.items() if k != "components"})
    components = json.dumps(spec["components"])
    for kind, items in spec["components"].items():
        if kind == "securitySchemes":
            continue
        for name in items:
            ref = f'"#/components/{kind}/{name}"'
            assert ref in text or ref in components, f"{kind}/{name} is not used"


def _examples(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every media type's examples in ``node``."""
    if isinstance(node, dict):
        if "schema" in node and ("example" in node or "examples" in node):
            if "example" in node:
                yield path, node["schema"], node["example"]
            for name, example in node.get("examples", {}).items():
                yield f"{path}/{name}", node["schema"], example["value"]
        for key, value in node.items():
            yield from _examples(value, f"{path}/{key}")


def test_every_example_fits_its_schema(spec: dict[str, Any]) -> None:
    found = list(_examples(spec["paths"]))
    assert len(found) > 100
    for where, schema, example in found:
        # Resolve "#/components/..." against the whole document.
        validator = OAS30Validator({**schema, "components": spec["components"]})
        errors = [e.message for e in validator.iter_errors(example)]
        assert errors == [], where


def test_the_document_says_where_and_how_to_call(spec: dict[str, Any]) -> None:
    assert spec["servers"] == [{"url": "/", "description": "The host this document is served from"}]
    assert spec["info"]["license"]["name"]
    assert spec["info"]["contact"]["url"]
    assert "docs/api.md" in spec["info"]["description"]
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                # Public operations say so (an empty list); the others name bearerAuth.
                assert operation["security"] in ([], [{"bearerAuth": []}]), operation
    public = {"checkHealth", "checkReadiness", "logIn", "refreshTokens", "logOut"}
    public |= {"listProducts", "getProduct"}
    assert {
        op["operationId"]
        for item in spec["paths"].values()
        for method, op in item.items()
        if method != "parameters" and op["security"] == []
    } == public


def test_an_order_page_links_to_order_pages(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for page, path in (
        ("ProductPage", "/api/v1/products/"),
        ("OrderPage", "/api/v1/orders/"),
        ("StaffOrderPage", "/api/v1/staff/orders/"),
    ):
        for link in ("next", "previous"):
            assert path + "?" in schemas[page]["properties"][link]["example"], (page, link)


def test_an_empty_product_patch_is_refused_by_the_document_too(spec: dict[str, Any]) -> None:
    assert spec["components"]["schemas"]["ProductPatch"]["minProperties"] == 1
