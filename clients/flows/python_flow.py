"""The mobile flow through the client openapi-python-client generated (``opply_api_client``).

Only what the document declares is used: operations by their operationId, models, the
declared headers (ETag, Location, Idempotent-Replayed) and the problem models of each error.
Run by clients/run.py with the live server's address and the users it created.
"""

from __future__ import annotations

import os
import uuid
from http import HTTPStatus

from opply_api_client import AuthenticatedClient, Client
from opply_api_client.api.addresses import add_address, list_addresses
from opply_api_client.api.auth import log_in, refresh_tokens
from opply_api_client.api.orders import (
    cancel_order,
    get_invoice,
    get_order,
    list_orders,
    place_order,
    reorder,
)
from opply_api_client.api.products import create_product, get_product, list_products
from opply_api_client.api.staff import ship_order
from opply_api_client.models import (
    Address,
    AddressCreate,
    AddressList,
    Order,
    OrderCreate,
    OrderLineIn,
    OrderPage,
    Product,
    ProductCreate,
    ProductPage,
    RefreshRequest,
    StaffOrder,
    TokenPair,
    TokenRequest,
)
from opply_api_client.models.place_order_response_409 import PlaceOrderResponse409
from opply_api_client.models.place_order_response_409_code import PlaceOrderResponse409Code
from opply_api_client.models.refresh_tokens_response_401 import RefreshTokensResponse401
from opply_api_client.types import File

BASE = os.environ["OPPLY_BASE_URL"]
PASSWORD = os.environ["OPPLY_PASSWORD"]
CUSTOMER = os.environ["OPPLY_CUSTOMER"]
STAFF = os.environ["OPPLY_STAFF"]
TAG = f"PY-{uuid.uuid4().hex[:6]}".upper()  # this run's products, found by search

anonymous = Client(base_url=BASE, raise_on_unexpected_status=True)


def step(message: str) -> None:
    print(f"  python: {message}", flush=True)


def tokens(username: str) -> TokenPair:
    answer = log_in.sync_detailed(
        client=anonymous, body=TokenRequest(username=username, password=PASSWORD)
    )
    assert answer.status_code == HTTPStatus.OK, answer
    assert isinstance(answer.parsed, TokenPair), answer.parsed
    return answer.parsed


def as_user(pair: TokenPair) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=BASE, token=pair.access, raise_on_unexpected_status=True)


def main() -> None:
    step("log in, refresh; the old refresh token is then refused")
    first = tokens(CUSTOMER)
    rotated = refresh_tokens.sync_detailed(
        client=anonymous, body=RefreshRequest(refresh=first.refresh)
    )
    assert isinstance(rotated.parsed, TokenPair), rotated
    again = refresh_tokens.sync_detailed(
        client=anonymous, body=RefreshRequest(refresh=first.refresh)
    )
    assert again.status_code == HTTPStatus.UNAUTHORIZED
    assert isinstance(again.parsed, RefreshTokensResponse401), again.parsed
    assert again.parsed.code == "invalid_token"
    # A refresh token used twice ends that whole login: log in again.
    customer = as_user(tokens(CUSTOMER))

    step("staff create two products")
    staff = as_user(tokens(STAFF))
    created = []
    for name, stock in (("Oat flour 25kg", 5), ("Rye flakes 10kg", 3)):
        answer = create_product.sync_detailed(
            client=staff,
            body=ProductCreate(
                name=f"{name} {TAG}", price="12.50", vat_rate="7.00", quantity_in_stock=stock
            ),
        )
        assert answer.status_code == HTTPStatus.CREATED, answer
        assert isinstance(answer.parsed, Product)
        assert answer.headers["Location"] == f"/api/v1/products/{answer.parsed.id}/"
        created.append(answer.parsed)
    oat, rye = created

    step("product pages")
    first_page = list_products.sync_detailed(client=customer, search=TAG, page_size=1)
    assert isinstance(first_page.parsed, ProductPage)
    assert first_page.parsed.count == 2
    assert first_page.parsed.next_ is not None
    assert first_page.parsed.previous is None
    assert [p.id for p in first_page.parsed.results] == [oat.id]
    second_page = list_products.sync_detailed(client=customer, search=TAG, page_size=1, page=2)
    assert isinstance(second_page.parsed, ProductPage)
    assert [p.id for p in second_page.parsed.results] == [rye.id]
    assert second_page.parsed.next_ is None
    assert second_page.parsed.previous is not None

    step("product detail with its ETag, then 304")
    detail = get_product.sync_detailed(oat.id, client=anonymous)
    assert isinstance(detail.parsed, Product)
    assert detail.parsed.quantity_in_stock == 5
    etag = detail.headers["ETag"]
    unchanged = get_product.sync_detailed(oat.id, client=anonymous, if_none_match=etag)
    assert unchanged.status_code == HTTPStatus.NOT_MODIFIED
    assert unchanged.content == b""

    step("an order with an Idempotency-Key, then its replay")
    key = str(uuid.uuid4())
    body = OrderCreate(
        lines=[
            OrderLineIn(product_id=oat.id, quantity=3),
            OrderLineIn(product_id=rye.id, quantity=1),
        ]
    )
    placed = place_order.sync_detailed(client=customer, body=body, idempotency_key=key)
    assert placed.status_code == HTTPStatus.CREATED, placed
    assert isinstance(placed.parsed, Order)
    order = placed.parsed
    assert order.status == "placed"
    assert order.total == "53.51"  # lines of 37.50 + 2.63 VAT and 12.50 + 0.88 VAT
    assert "Idempotent-Replayed" not in placed.headers
    replay = place_order.sync_detailed(client=customer, body=body, idempotency_key=key)
    assert replay.status_code == HTTPStatus.CREATED
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert isinstance(replay.parsed, Order)
    assert replay.parsed.id == order.id

    step("409 out_of_stock, parsed as the error model")
    short = place_order.sync_detailed(
        client=customer, body=OrderCreate(lines=[OrderLineIn(product_id=oat.id, quantity=3)])
    )
    assert short.status_code == HTTPStatus.CONFLICT
    assert isinstance(short.parsed, PlaceOrderResponse409), short.parsed
    assert short.parsed.code == PlaceOrderResponse409Code.OUT_OF_STOCK
    assert isinstance(short.parsed.errors, list)
    [line] = short.parsed.errors
    assert (line.product_id, line.requested, line.available) == (oat.id, 3, 2)

    step("history, detail, cancel")
    history = list_orders.sync_detailed(client=customer)
    assert isinstance(history.parsed, OrderPage)
    assert [o.id for o in history.parsed.results] == [order.id]
    seen = get_order.sync_detailed(order.id, client=customer)
    assert isinstance(seen.parsed, Order)
    assert [line.quantity for line in seen.parsed.lines] == [3, 1]
    assert seen.parsed.created_at.tzinfo is not None
    cancelled = cancel_order.sync_detailed(order.id, client=customer)
    assert isinstance(cancelled.parsed, Order)
    assert cancelled.parsed.status == "cancelled"
    assert cancelled.parsed.cancelled_at is not None
    restocked = get_product.sync_detailed(oat.id, client=anonymous)
    assert isinstance(restocked.parsed, Product)
    assert restocked.parsed.quantity_in_stock == 5

    step("an address, an order to it, a reorder")
    added = add_address.sync_detailed(
        client=customer,
        body=AddressCreate(
            recipient="Jane Baker",
            company="Kaffee & Co",
            line1="12 Mill Lane",
            postal_code="EC1A 1BB",
            city="London",
            country="gb",
        ),
    )
    assert added.status_code == HTTPStatus.CREATED, added
    assert isinstance(added.parsed, Address)
    address = added.parsed
    assert (address.country, address.is_default) == ("GB", True)
    assert added.headers["Location"] == f"/api/v1/me/addresses/{address.id}/"
    book = list_addresses.sync_detailed(client=customer)
    assert isinstance(book.parsed, AddressList)
    assert [a.id for a in book.parsed.results] == [address.id]
    to_it = place_order.sync_detailed(
        client=customer,
        body=OrderCreate(lines=[OrderLineIn(product_id=rye.id, quantity=1)], address_id=address.id),
    )
    assert to_it.status_code == HTTPStatus.CREATED, to_it
    assert isinstance(to_it.parsed, Order)
    assert to_it.parsed.delivery_address is not None
    assert to_it.parsed.delivery_address.recipient == "Jane Baker"
    assert to_it.parsed.invoice_number is None
    again_placed = reorder.sync_detailed(to_it.parsed.id, client=customer)
    assert again_placed.status_code == HTTPStatus.CREATED, again_placed
    assert isinstance(again_placed.parsed, Order)
    repeat = again_placed.parsed
    assert repeat.id != to_it.parsed.id
    assert [(line.product_id, line.quantity) for line in repeat.lines] == [(rye.id, 1)]
    assert again_placed.headers["Location"] == f"/api/v1/orders/{repeat.id}/"

    step("staff ship it; its invoice, then 304")
    shipped = ship_order.sync_detailed(repeat.id, client=staff)
    assert shipped.status_code == HTTPStatus.OK, shipped
    assert isinstance(shipped.parsed, StaffOrder)
    number = shipped.parsed.invoice_number
    assert isinstance(number, str), number
    assert number.startswith("INV-"), number
    invoice = get_invoice.sync_detailed(repeat.id, client=customer)
    assert invoice.status_code == HTTPStatus.OK, invoice
    assert isinstance(invoice.parsed, File), invoice.parsed
    assert invoice.parsed.payload.read().startswith(b"%PDF")
    assert invoice.headers["Content-Disposition"] == f'inline; filename="{number}.pdf"'
    cached = get_invoice.sync_detailed(
        repeat.id, client=customer, if_none_match=invoice.headers["ETag"]
    )
    assert cached.status_code == HTTPStatus.NOT_MODIFIED
    step("done")


if __name__ == "__main__":
    main()
