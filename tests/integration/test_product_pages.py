"""Every page of the catalogue holds exactly the products it should, with the right count.

The unfiltered list reads its size from ``product_stats`` (kept by triggers) and finds a deep
page's first id from the start or from the end of the index (docs/performance.md); these tests
walk every page of every size across both halves, the edges and past the end.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Connection, text

from tests.integration import factories as f

TOTAL = 23


@pytest.fixture
def catalogue(uow: Any) -> list[int]:
    return [f.product(uow).id for _ in range(TOTAL)]


@pytest.mark.parametrize("page_size", [1, 2, 5, 10, 23, 100])
def test_every_page_of_the_catalogue_holds_the_next_products_by_id(
    client: FlaskClient, catalogue: list[int], page_size: int
) -> None:
    last_page = -(-TOTAL // page_size)
    for page in range(1, last_page + 2):
        body = client.get(f"/api/v1/products/?page={page}&page_size={page_size}").get_json()
        start = (page - 1) * page_size
        assert [p["id"] for p in body["results"]] == catalogue[start : start + page_size], page
        assert body["count"] == TOTAL
        assert (body["next"] is None) == (page >= last_page)


def test_the_count_follows_products_added_and_deleted(
    client: FlaskClient, catalogue: list[int], uow: Any, connection: Connection
) -> None:
    f.product(uow)
    assert client.get("/api/v1/products/").get_json()["count"] == TOTAL + 1
    # No endpoint deletes products; the admin site or an operator may. The triggers follow.
    connection.execute(
        text("DELETE FROM products WHERE id IN (:a, :b)"), {"a": catalogue[0], "b": catalogue[-1]}
    )
    body = client.get("/api/v1/products/?page=2&page_size=10").get_json()
    assert body["count"] == TOTAL - 1
    assert [p["id"] for p in body["results"]] == catalogue[11:21]


def test_a_filtered_list_counts_only_what_matches(client: FlaskClient, uow: Any) -> None:
    f.product(uow, name="Oat flour 25kg", stock=0)
    f.product(uow, name="Oat bran 5kg", stock=4)
    f.product(uow, name="Rye 10kg", stock=9)
    body = client.get("/api/v1/products/?search=oat&in_stock=true").get_json()
    assert body["count"] == 1
    assert [p["name"] for p in body["results"]] == ["Oat bran 5kg"]
