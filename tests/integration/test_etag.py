"""Conditional GET (the contract's "Caching"): an ETag on product list, product detail and order
detail; a matching If-None-Match gets a bodiless 304 that still carries the ETag."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f

PRODUCT_READS = ["/api/v1/products/", "/api/v1/products/{id}/"]


def _revalidate(client: FlaskClient, path: str, etag: str, **kwargs: Any) -> Any:
    headers = {"If-None-Match": etag, **kwargs.pop("headers", {})}
    return client.get(path, headers=headers, **kwargs)


@pytest.mark.parametrize("path", PRODUCT_READS)
def test_a_product_read_carries_an_etag_and_a_matching_revalidation_is_a_bare_304(
    client: FlaskClient, uow: Any, path: str
) -> None:
    p = f.product(uow, stock=5)
    first = client.get(path.format(id=p.id))
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    again = _revalidate(client, path.format(id=p.id), etag)
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert "Content-Type" not in again.headers


@pytest.mark.parametrize("path", PRODUCT_READS)
def test_a_product_read_gets_a_new_etag_and_a_full_answer_once_the_stock_changes(
    client: FlaskClient, container: Container, uow: Any, path: str
) -> None:
    p = f.product(uow, stock=5)
    old = client.get(path.format(id=p.id)).headers["ETag"]
    headers = f.bearer(client, f.user(container).username)
    placed = client.post("/api/v1/orders/", json=f.order_body((p.id, 2)), headers=headers)
    assert placed.status_code == 201
    changed = _revalidate(client, path.format(id=p.id), old)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != old
    body = changed.get_json()
    stock = body["results"][0] if "results" in body else body
    assert stock["quantity_in_stock"] == 3


def test_a_price_change_by_staff_changes_the_product_etag(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, price="10.00")
    old = client.get(f"/api/v1/products/{p.id}/").headers["ETag"]
    staff = f.bearer(client, f.user(container, staff=True).username)
    client.patch(f"/api/v1/products/{p.id}/", json={"price": "11.00"}, headers=staff)
    assert _revalidate(client, f"/api/v1/products/{p.id}/", old).status_code == 200


def test_another_page_of_products_has_another_etag(client: FlaskClient, uow: Any) -> None:
    for _ in range(3):
        f.product(uow)
    first = client.get("/api/v1/products/?page_size=2").headers["ETag"]
    second = client.get("/api/v1/products/?page=2&page_size=2")
    assert second.headers["ETag"] != first
    assert _revalidate(client, "/api/v1/products/?page=2&page_size=2", first).status_code == 200


def test_an_order_carries_an_etag_that_changes_when_it_is_cancelled(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=5)
    headers = f.bearer(client, f.user(container).username)
    order_id = client.post(
        "/api/v1/orders/", json=f.order_body((p.id, 1)), headers=headers
    ).get_json()["id"]
    path = f"/api/v1/orders/{order_id}/"
    etag = client.get(path, headers=headers).headers["ETag"]
    not_modified = _revalidate(client, path, etag, headers=headers)
    assert not_modified.status_code == 304
    assert not_modified.get_data() == b""
    assert not_modified.headers["ETag"] == etag
    client.post(f"{path}cancel/", headers=headers)
    cancelled = _revalidate(client, path, etag, headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.headers["ETag"] != etag


def test_an_etag_does_not_open_another_customers_order_or_skip_the_token(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=5)
    owner = f.bearer(client, f.user(container).username)
    order_id = client.post("/api/v1/orders/", json=f.order_body((p.id, 1)), headers=owner)
    path = f"/api/v1/orders/{order_id.get_json()['id']}/"
    etag = client.get(path, headers=owner).headers["ETag"]
    stranger = f.bearer(client, f.user(container).username)
    assert _revalidate(client, path, etag, headers=stranger).status_code == 404
    assert _revalidate(client, path, etag).status_code == 401


def test_a_star_or_a_list_of_tags_revalidates_too(client: FlaskClient, uow: Any) -> None:
    p = f.product(uow)
    path = f"/api/v1/products/{p.id}/"
    etag = client.get(path).headers["ETag"]
    assert _revalidate(client, path, f'"stale", {etag}').status_code == 304
    assert _revalidate(client, path, f"W/{etag}").status_code == 304
    assert _revalidate(client, path, "*").status_code == 304
    assert _revalidate(client, path, '"stale"').status_code == 200


def test_the_openapi_document_describes_etag_if_none_match_and_304(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    for path in (
        "/api/v1/products/",
        "/api/v1/products/{product_id}/",
        "/api/v1/orders/{order_id}/",
    ):
        get = spec["paths"][path]["get"]
        assert "304" in get["responses"], path
        assert "ETag" in get["responses"]["200"]["headers"], path
        assert "ETag" in get["responses"]["304"]["headers"], path
        assert "content" in get["responses"]["200"], path  # the headers did not replace it
        parameters = [p.get("$ref", p.get("name", "")) for p in get["parameters"]]
        assert "#/components/parameters/If-None-Match" in parameters, path
    # The header parameter is added to the query's, not put in their place.
    listed = spec["paths"]["/api/v1/products/"]["get"]["parameters"]
    assert {"page", "page_size", "search", "in_stock"} <= {p.get("name") for p in listed}
