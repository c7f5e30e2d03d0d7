"""Test data factories: every test makes what it needs in one call, through the use cases."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient

from opply.application.dto import NewProduct, NewUser, ProductView, UserView
from opply.application.products import CreateProduct
from opply.application.unit_of_work import UnitOfWork
from opply.entrypoints.container import Container

_seq = itertools.count(1)
PASSWORD = "a-long-test-password"


def product(
    uow: UnitOfWork,
    *,
    name: str | None = None,
    price: str = "10.00",
    stock: int = 10,
) -> ProductView:
    return CreateProduct(uow)(
        NewProduct(
            name=name or f"Product {next(_seq)}", price=Decimal(price), quantity_in_stock=stock
        )
    )


def user(container: Container, *, staff: bool = False, username: str | None = None) -> UserView:
    return container.create_user()(
        NewUser(username=username or f"user{next(_seq)}", password=PASSWORD, is_staff=staff)
    )


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/token/", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    body: dict[str, str] = response.get_json()
    return body


def bearer(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(client, username, password)['access']}"}


def order_body(*lines: tuple[int, int]) -> dict[str, Any]:
    return {"lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}


def product_json(
    product_id: int, name: str, price: str, stock: int, **fields: str | int
) -> dict[str, Any]:
    """A product as the API sends it, with the defaults unless ``fields`` say otherwise."""
    return {
        "id": product_id,
        "sku": f"P-{product_id:06d}",
        "name": name,
        "description": "",
        "unit": "unit",
        "price": price,
        "vat_rate": "0.00",
        "quantity_in_stock": stock,
        "min_order_quantity": 1,
        "case_size": 1,
        **fields,
    }
