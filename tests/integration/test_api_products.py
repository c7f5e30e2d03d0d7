"""The catalogue API: anyone reads, staff write."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f


def test_anyone_pages_through_products_by_id_with_links(client: FlaskClient, uow: Any) -> None:
    made = [f.product(uow, name=f"Flour {i}", price="1.50", stock=i) for i in range(5)]
    first = client.get("/api/v1/products/?page_size=2")
    assert first.status_code == 200
    body = first.get_json()
    assert body["count"] == 5
    assert [p["id"] for p in body["results"]] == [made[0].id, made[1].id]
    assert body["previous"] is None
    assert body["next"].endswith("/api/v1/products/?page=2&page_size=2")
    assert body["results"][0] == f.product_json(made[0].id, "Flour 0", "1.50", 0)
    last = client.get("/api/v1/products/?page=3&page_size=2").get_json()
    assert [p["id"] for p in last["results"]] == [made[4].id]
    assert last["next"] is None
    assert last["previous"].endswith("page=2&page_size=2")


def test_a_page_past_the_end_is_empty_with_no_next(client: FlaskClient, uow: Any) -> None:
    f.product(uow)
    body = client.get("/api/v1/products/?page=50").get_json()
    assert body["results"] == []
    assert body["next"] is None
    assert body["count"] == 1


@pytest.mark.parametrize(
    "query", ["page_size=101", "page_size=0", "page=0", "page=abc", "in_stock=maybe"]
)
def test_bad_paging_is_a_422_not_a_silent_cap(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/products/?{query}")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "validation_error"
    assert response.get_json()["errors"][0]["location"] == "query"


def test_search_is_case_insensitive_and_in_stock_filters(client: FlaskClient, uow: Any) -> None:
    oat = f.product(uow, name="Oat flour 25kg", stock=3)
    f.product(uow, name="OATS rolled", stock=0)
    f.product(uow, name="Rye flour", stock=3)
    f.product(uow, name="100% cocoa", stock=3)
    body = client.get("/api/v1/products/?search=oat&in_stock=true").get_json()
    assert [p["id"] for p in body["results"]] == [oat.id]
    assert client.get("/api/v1/products/?search=oat").get_json()["count"] == 2
    assert client.get("/api/v1/products/?search=%25").get_json()["count"] == 1
    assert "search=oat" in client.get("/api/v1/products/?search=oat&page_size=1").get_json()["next"]


def test_one_product_and_an_unknown_one(client: FlaskClient, uow: Any) -> None:
    p = f.product(uow, name="Spelt", price="18.90", stock=25)
    assert client.get(f"/api/v1/products/{p.id}/").get_json() == f.product_json(
        p.id, "Spelt", "18.90", 25
    )
    assert client.get(f"/api/v1/products/{p.id}").status_code == 200  # no slash: answered too
    missing = client.get("/api/v1/products/987654/")
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "not_found"


def test_staff_create_patch_and_restock_products(client: FlaskClient, container: Container) -> None:
    staff = f.user(container, staff=True)
    headers = f.bearer(client, staff.username)
    created = client.post(
        "/api/v1/products/",
        json={"name": "Hemp seeds 5kg", "price": "34.50", "quantity_in_stock": 12},
        headers=headers,
    )
    assert created.status_code == 201
    product = created.get_json()
    assert created.headers["Location"] == f"/api/v1/products/{product['id']}/"
    assert product["price"] == "34.50"
    patched = client.patch(
        f"/api/v1/products/{product['id']}/", json={"price": "30"}, headers=headers
    )
    assert patched.get_json()["price"] == "30.00"
    restocked = client.post(
        f"/api/v1/products/{product['id']}/restock/", json={"quantity": 8}, headers=headers
    )
    assert restocked.status_code == 200
    assert restocked.get_json()["quantity_in_stock"] == 20


@pytest.mark.parametrize(
    "body",
    [
        {"name": "X", "price": 12.5},
        {"name": "X", "price": "-1.00"},
        {"name": "X", "price": "1.001"},
        {"name": "X", "price": "NaN"},
        {"name": "", "price": "1.00"},
        {"name": "X" * 201, "price": "1.00"},
        {"name": "X", "price": "1.00", "quantity_in_stock": -1},
        {"name": "X", "price": "1.00", "id": 5},
        {"price": "1.00"},
    ],
)
def test_invalid_products_are_refused_with_422(
    client: FlaskClient, container: Container, body: dict[str, Any]
) -> None:
    staff = f.user(container, staff=True)
    response = client.post("/api/v1/products/", json=body, headers=f.bearer(client, staff.username))
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert client.get("/api/v1/products/").get_json()["count"] == 0


def test_restock_needs_a_positive_quantity_and_an_empty_patch_is_refused(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=3)
    headers = f.bearer(client, f.user(container, staff=True).username)
    for quantity in (0, -5, "3"):
        r = client.post(
            f"/api/v1/products/{p.id}/restock/", json={"quantity": quantity}, headers=headers
        )
        assert r.status_code == 422
    assert client.patch(f"/api/v1/products/{p.id}/", json={}, headers=headers).status_code == 422
    assert client.get(f"/api/v1/products/{p.id}/").get_json()["quantity_in_stock"] == 3


def test_customers_cannot_write_the_catalogue_and_anonymous_callers_must_log_in(
    client: FlaskClient, container: Container, uow: Any
) -> None:
    p = f.product(uow, stock=3)
    customer = f.bearer(client, f.user(container).username)
    calls = [
        ("post", "/api/v1/products/", {"name": "X", "price": "1.00"}),
        ("patch", f"/api/v1/products/{p.id}/", {"price": "0.01"}),
        ("post", f"/api/v1/products/{p.id}/restock/", {"quantity": 1}),
    ]
    for method, path, body in calls:
        as_customer = getattr(client, method)(path, json=body, headers=customer)
        assert as_customer.status_code == 403
        assert as_customer.get_json()["code"] == "permission_denied"
        anonymous = getattr(client, method)(path, json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"/api/v1/products/{p.id}/").get_json() == f.product_json(
        p.id, p.name, "10.00", 3
    )


def test_search_ignores_case_beyond_ascii(client: FlaskClient, uow: Any) -> None:
    mill = f.product(uow, name="Ölmühle Rapsöl 10L")
    f.product(uow, name="Olive oil 5L")
    body = client.get("/api/v1/products/?search=ÖLMÜHLE").get_json()
    assert [p["id"] for p in body["results"]] == [mill.id]
    assert client.get("/api/v1/products/?search=rapsÖl").get_json()["count"] == 1
