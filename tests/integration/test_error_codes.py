"""Every answer of every operation, driven through HTTP, is one its OpenAPI document lists.

Each case sends requests and names the status and ``code`` its last answer must have. That
answer must be documented for its operation: the status, the ``code`` in that status' enum,
every header of the contract it carries declared there, every header declared required present.
And every code the document lists for an operation is sent by some case here. So a new error
cannot be sent undocumented, and a documented one cannot go stale. (The server's own refusals,
414 and 431, come before the app: tests/integration/test_server_limits.py sends those.)

The generic paths (no token or a bad one, a customer on a staff operation, malformed JSON, a
body over the limit, an invalid argument, an unknown id, a fault of ours, an unreachable
database) are derived for every operation from one valid call each; the domain's errors are
listed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import Connection, insert
from werkzeug.test import TestResponse

from opply.adapters.orm import idempotency_keys
from opply.application.dto import NewAddress, NewProduct, PlaceOrderCommand
from opply.application.orders import OrderAction
from opply.application.webhooks import DeliveryPolicy, SendOutcome
from opply.domain.model import LineRequest
from opply.entrypoints.api.headers import RESPONSE_HEADERS
from opply.entrypoints.api.problems import HttpProblem, error_table
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.container import Container, build_container
from tests.integration import factories as f
from tests.integration.conftest import Database, make_settings

FAULT_HEADER = "X-Test-Fault"
MIB = 1024 * 1024
# A PostgreSQL nobody listens on (the discard port): connecting is refused at once.
UNREACHABLE = "postgresql+psycopg2://opply@127.0.0.1:9/opply"
MISSING_ID = 999_999


@pytest.fixture
def database(sqlite_database: Database) -> Database:
    """SQLite: no answer here depends on the database's kind."""
    return sqlite_database


def _with_fault_switch(app: Flask) -> Flask:
    @app.before_request
    def _fault() -> None:
        if request.headers.get(FAULT_HEADER):
            raise RuntimeError("a fault injected by the test")

    return app


@pytest.fixture
def app(database: Database, container: Container) -> Iterator[Flask]:
    app = _with_fault_switch(create_app(make_settings(database), container=container))
    yield app
    unwire_app(app)


_documents: dict[str, Any] = {}


def document(client: FlaskClient) -> dict[str, Any]:
    """The served document (the same for every app of the run: read once)."""
    if "spec" not in _documents:
        _documents["spec"] = client.get("/openapi.json").get_json()
    spec: dict[str, Any] = _documents["spec"]
    return spec


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op
        for item in spec["paths"].values()
        for method, op in item.items()
        if method != "parameters"
    }


# --- the world the cases run in ----------------------------------------------------------------


@dataclass
class World:
    client: FlaskClient
    connection: Connection | None = None
    ids: dict[str, int] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # role -> access token
    refresh: str = ""


@pytest.fixture
def world(client: FlaskClient, container: Container, connection: Connection) -> World:
    """A staff member, a customer with one address, a product with 5 in stock, one with the SKU
    ``TAKEN-1``, one sold in pairs from 2, and the customer's orders: one placed, one shipped,
    one cancelled."""
    staff, customer = f.user(container, staff=True), f.user(container)
    webhook = container.create_webhook()(
        url="https://erp.example.com/hooks", event_types=["order.placed"]
    )
    create = container.create_product()
    product = create(NewProduct(name="Oat flour", price=Decimal("12.50"), quantity_in_stock=5))
    create(NewProduct(name="Rye", price=Decimal("3.00"), sku="TAKEN-1"))
    pairs = create(
        NewProduct(
            name="Yeast",
            price=Decimal("1.00"),
            quantity_in_stock=9,
            min_order_quantity=2,
            case_size=2,
        )
    )
    address = container.add_address()(
        customer.id,
        NewAddress(
            recipient="Jane", line1="1 Mill Lane", postal_code="1", city="Leeds", country="GB"
        ),
    )

    def order(*moves: OrderAction) -> int:
        lines = [LineRequest(product_id=product.id, quantity=1)]
        placed = container.place_order()(PlaceOrderCommand(customer_id=customer.id, lines=lines))
        for move in moves:
            container.move_order()(placed.order_id, move)
        return placed.order_id

    ids = {
        "customer": customer.id,
        "product": product.id,
        "order": order(),
        "shipped": order(OrderAction.SHIP),
        "cancelled": order(OrderAction.CANCEL),
        "address": address.id,
        "pairs": pairs.id,
        "webhook": webhook.id,
        **_deliveries(container),
    }
    customer_tokens = f.login(client, customer.username)
    return World(
        client=client,
        connection=connection,
        ids=ids,
        usernames={"customer": customer.username, "staff": staff.username},
        tokens={
            "customer": customer_tokens["access"],
            "staff": f.login(client, staff.username)["access"],
        },
        refresh=customer_tokens["refresh"],
    )


def _deliveries(container: Container) -> dict[str, int]:
    """The webhook's deliveries of the three orders placed: one failed for good, one pending."""
    store, now = container.webhook_store(), container.clock().now()
    store.fan_out(now, 100)  # SQLite: every committed event is final
    failed, pending = store.claim(now, timedelta(minutes=1), 2)
    store.record(
        DeliveryPolicy(schedule=()).result(
            failed, SendOutcome(status_code=500), at=now, duration_ms=1
        )
    )
    return {"failed_delivery": failed.delivery_id, "pending_delivery": pending.delivery_id}


# --- one valid call per operation ----------------------------------------------------------------

Body = Callable[[World], Any]
KEEP: Any = object()


@dataclass(frozen=True)
class Call:
    """A valid request: ``path`` takes the world's ids (``{product}``), ``role`` says whose
    access token it carries (``None``: none), ``body`` makes the JSON body from the world."""

    method: str
    path: str
    role: str | None = None
    body: Body | None = None
    query: tuple[tuple[str, str], ...] = ()

    def send(
        self,
        w: World,
        *,
        role: str | None = KEEP,
        json: Any = KEEP,
        ids: dict[str, int] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        who = self.role if role is KEEP else role
        sent = dict(headers or {})
        if who:
            sent.setdefault("Authorization", f"Bearer {w.tokens.get(who, who)}")
        if json is KEEP and self.body is not None and "data" not in kwargs:
            json = self.body(w)
        if json is not KEEP:
            kwargs["json"] = json
        kwargs["query_string"] = {**dict(self.query), **kwargs.get("query_string", {})}
        path = self.path.format(**{**w.ids, **(ids or {})})
        return w.client.open(path, method=self.method, headers=sent, **kwargs)


NEW_PRODUCT = {"name": "Spelt", "price": "4.20"}
NEW_ADDRESS = {
    "recipient": "Jane Baker",
    "line1": "12 Mill Lane",
    "postal_code": "EC1A 1BB",
    "city": "London",
    "country": "gb",
}


WEBHOOKS = "/api/v1/staff/webhooks/"
NEW_WEBHOOK = {"url": "https://erp.example.com/hooks", "event_types": ["order.shipped"]}


def _one_line(w: World) -> dict[str, Any]:
    return {"lines": [{"product_id": w.ids["product"], "quantity": 1}]}


VALID: dict[str, Call] = {
    "checkHealth": Call("GET", "/healthz"),
    "checkReadiness": Call("GET", "/readyz"),
    "logIn": Call(
        "POST",
        "/api/token/",
        body=lambda w: {"username": w.usernames["customer"], "password": f.PASSWORD},
    ),
    "refreshTokens": Call("POST", "/api/token/refresh/", body=lambda w: {"refresh": w.refresh}),
    "logOut": Call("POST", "/api/token/revoke/", body=lambda w: {"refresh": w.refresh}),
    "getMe": Call("GET", "/api/v1/me/", "customer"),
    "listMyEvents": Call("GET", "/api/v1/me/events/", "customer"),
    "changePassword": Call(
        "POST",
        "/api/v1/me/password/",
        "customer",
        lambda w: {"current_password": f.PASSWORD, "new_password": "a new long passphrase"},
    ),
    "listProducts": Call("GET", "/api/v1/products/", query=(("search", "oat"),)),
    "createProduct": Call("POST", "/api/v1/products/", "staff", lambda w: NEW_PRODUCT),
    "getProduct": Call("GET", "/api/v1/products/{product}/"),
    "updateProduct": Call(
        "PATCH", "/api/v1/products/{product}/", "staff", lambda w: {"price": "13.00"}
    ),
    "restockProduct": Call(
        "POST", "/api/v1/products/{product}/restock/", "staff", lambda w: {"quantity": 1}
    ),
    "listOrders": Call("GET", "/api/v1/orders/", "customer", query=(("status", "placed"),)),
    "placeOrder": Call("POST", "/api/v1/orders/", "customer", _one_line),
    "getOrder": Call("GET", "/api/v1/orders/{order}/", "customer"),
    "cancelOrder": Call("POST", "/api/v1/orders/{order}/cancel/", "customer"),
    "listAllOrders": Call("GET", "/api/v1/staff/orders/", "staff", query=(("status", "placed"),)),
    "getAnyOrder": Call("GET", "/api/v1/staff/orders/{order}/", "staff"),
    "shipOrder": Call("POST", "/api/v1/staff/orders/{order}/ship/", "staff"),
    "deliverOrder": Call("POST", "/api/v1/staff/orders/{shipped}/deliver/", "staff"),
    "cancelAnyOrder": Call("POST", "/api/v1/staff/orders/{order}/cancel/", "staff"),
    "reorder": Call("POST", "/api/v1/orders/{order}/reorder/", "customer", lambda w: {}),
    "getInvoice": Call("GET", "/api/v1/orders/{shipped}/invoice/", "customer"),
    "getAnyInvoice": Call("GET", "/api/v1/staff/orders/{shipped}/invoice/", "staff"),
    "listAddresses": Call("GET", "/api/v1/me/addresses/", "customer"),
    "addAddress": Call("POST", "/api/v1/me/addresses/", "customer", lambda w: NEW_ADDRESS),
    "getAddress": Call("GET", "/api/v1/me/addresses/{address}/", "customer"),
    "updateAddress": Call(
        "PATCH", "/api/v1/me/addresses/{address}/", "customer", lambda w: {"city": "York"}
    ),
    "deleteAddress": Call("DELETE", "/api/v1/me/addresses/{address}/", "customer"),
    "listWebhookEndpoints": Call("GET", WEBHOOKS, "staff"),
    "createWebhookEndpoint": Call("POST", WEBHOOKS, "staff", lambda w: NEW_WEBHOOK),
    "getWebhookEndpoint": Call("GET", WEBHOOKS + "{webhook}/", "staff"),
    "updateWebhookEndpoint": Call(
        "PATCH", WEBHOOKS + "{webhook}/", "staff", lambda w: {"description": "ERP"}
    ),
    "deleteWebhookEndpoint": Call("DELETE", WEBHOOKS + "{webhook}/", "staff"),
    "rotateWebhookSecret": Call("POST", WEBHOOKS + "{webhook}/rotate-secret/", "staff"),
    "listWebhookDeliveries": Call("GET", WEBHOOKS + "{webhook}/deliveries/", "staff"),
    "retryWebhookDelivery": Call("POST", WEBHOOKS + "deliveries/{failed_delivery}/retry/", "staff"),
}
SUCCESS = {
    "createProduct": 201,
    "placeOrder": 201,
    "logOut": 204,
    "changePassword": 204,
    "reorder": 201,
    "addAddress": 201,
    "deleteAddress": 204,
    "createWebhookEndpoint": 201,
    "deleteWebhookEndpoint": 204,
    "retryWebhookDelivery": 202,
}
CONDITIONAL = ("listProducts", "getProduct", "getOrder", "getInvoice", "getAnyInvoice")
# What each operation that parses arguments refuses as not fitting its schema.
INVALID_ARGUMENT: dict[str, dict[str, Any]] = {
    "logIn": {"json": {"username": "alice"}},
    "refreshTokens": {"json": {"refresh": ""}},
    "logOut": {"json": {}},
    "listMyEvents": {"query_string": {"limit": 101}},
    "changePassword": {"json": {"current_password": "x"}},
    "listProducts": {"query_string": {"page_size": 101}},
    "createProduct": {"json": {"name": "Spelt", "price": 4.2}},
    "updateProduct": {"json": {}},  # an empty PATCH (the document's minProperties: 1)
    "restockProduct": {"json": {"quantity": 0}},
    "listOrders": {"query_string": {"status": "lost"}},
    "placeOrder": {"json": {"lines": []}},
    "listAllOrders": {"query_string": {"page": 0}},
    "reorder": {"json": {"address_id": 0}},
    "addAddress": {"json": {**NEW_ADDRESS, "phone": "call me"}},
    "updateAddress": {"json": {}},  # an empty PATCH (the document's minProperties: 1)
    "listWebhookEndpoints": {"query_string": {"page_size": 101}},
    "createWebhookEndpoint": {"json": {**NEW_WEBHOOK, "event_types": ["order.lost"]}},
    "updateWebhookEndpoint": {"json": {}},  # an empty PATCH (the document's minProperties: 1)
    "listWebhookDeliveries": {"query_string": {"page": 0}},
}


# --- the cases ---------------------------------------------------------------------------------

Send = Callable[[World], TestResponse]


@dataclass(frozen=True)
class Case:
    operation: str
    status: int
    code: str | None  # None: no problem (a success, or a 304)
    send: Send
    name: str

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.status}-{self.name}"


def _call(operation: str, **kwargs: Any) -> Send:
    return lambda w: VALID[operation].send(w, **kwargs)


def _then(first: Send, second: Send) -> Send:
    def send(w: World) -> TestResponse:
        first(w)
        return second(w)

    return send


def _times(count: int, call: Send) -> Send:
    def send(w: World) -> TestResponse:
        for _ in range(count - 1):
            call(w)
        return call(w)

    return send


def _revalidated(operation: str) -> Send:
    def send(w: World) -> TestResponse:
        etag = VALID[operation].send(w).headers["ETag"]
        return VALID[operation].send(w, headers={"If-None-Match": etag})

    return send


def _order(quantity: int = 1, key: str | None = None, product: int | None = None) -> Send:
    def send(w: World) -> TestResponse:
        lines = [{"product_id": product or w.ids["product"], "quantity": quantity}]
        headers = {"Idempotency-Key": key} if key else {}
        return VALID["placeOrder"].send(w, json={"lines": lines}, headers=headers)

    return send


def _reorder(
    *, key: str | None = None, json: Any = None, first: Send | None = None, order: str = "order"
) -> Send:
    def send(w: World) -> TestResponse:
        if first is not None:
            first(w)
        headers = {"Idempotency-Key": key} if key else {}
        return VALID["reorder"].send(
            w, json=json if json is not None else {}, headers=headers, ids={"order": w.ids[order]}
        )

    return send


def _staff_patch(**changes: Any) -> Send:
    return _call("updateProduct", json=changes)


def _pairs(quantity: int) -> Send:
    def send(w: World) -> TestResponse:
        lines = [{"product_id": w.ids["pairs"], "quantity": quantity}]
        return VALID["placeOrder"].send(w, json={"lines": lines})

    return send


def _reorder_of_three_then_sold_in_pairs(w: World) -> TestResponse:
    """An order of 3 (placed when sold by the unit), reordered once the product is sold in
    pairs from 2: 3 meets the minimum but is not a whole number of pairs."""
    lines = [{"product_id": w.ids["product"], "quantity": 3}]
    placed = VALID["placeOrder"].send(w, json={"lines": lines})
    assert placed.status_code == 201, placed.get_json()
    _staff_patch(min_order_quantity=2, case_size=2)(w)
    return VALID["reorder"].send(w, json={}, ids={"order": placed.get_json()["id"]})


def _key_in_progress(w: World) -> TestResponse:
    # What a store that does not wait for a concurrent claim shows a retry: the key claimed,
    # its answer not kept yet.
    assert w.connection is not None
    w.connection.execute(
        insert(idempotency_keys).values(
            customer_id=w.ids["customer"],
            key="k-running",
            fingerprint="",
            created_at=datetime.now(UTC),
            order_id=None,
        )
    )
    return _order(key="k-running")(w)


def _reorder_key_in_progress(w: World) -> TestResponse:
    _key_in_progress(w)  # claims "k-running" (and answers the order placed with it: a 409)
    return _reorder(key="k-running")(w)


PATH_IDS = ("product", "order", "shipped", "address", "webhook", "failed_delivery")


def _generic(operation: str, call: Call) -> list[Case]:
    cases = [
        Case(operation, SUCCESS.get(operation, 200), None, _call(operation), "valid"),
        Case(
            operation,
            500,
            "internal_error",
            _call(operation, headers={FAULT_HEADER: "1"}),
            "fault",
        ),
    ]
    if call.role:
        cases += [
            Case(operation, 401, "not_authenticated", _call(operation, role=None), "no-token"),
            Case(operation, 401, "invalid_token", _call(operation, role="forged"), "bad-token"),
        ]
    if call.role == "staff":
        cases.append(
            Case(operation, 403, "permission_denied", _call(operation, role="customer"), "customer")
        )
    if call.body is not None:
        kind = {"content_type": "application/json"}
        cases += [
            Case(operation, 400, "bad_request", _call(operation, data="{oops", **kind), "not-json"),
            Case(
                operation,
                413,
                "payload_too_large",
                _call(operation, data=b" " * (MIB + 1), **kind),
                "over-a-mebibyte",
            ),
        ]
    if operation in INVALID_ARGUMENT:
        cases.append(
            Case(
                operation,
                422,
                "validation_error",
                _call(operation, **INVALID_ARGUMENT[operation]),
                "invalid-argument",
            )
        )
    if "{" in call.path:
        missing = dict.fromkeys(PATH_IDS, MISSING_ID)
        cases.append(Case(operation, 404, "not_found", _call(operation, ids=missing), "missing"))
        huge = dict.fromkeys(PATH_IDS, 2**31)
        cases.append(Case(operation, 404, "not_found", _call(operation, ids=huge), "no-route"))
    if operation in CONDITIONAL:
        cases.append(Case(operation, 304, None, _revalidated(operation), "not-modified"))
    return cases


SPECIFIC: list[Case] = [
    Case(
        "logIn",
        401,
        "invalid_credentials",
        _call("logIn", json={"username": "nobody", "password": "x"}),
        "unknown-user",
    ),
    Case(
        "logIn",
        429,
        "rate_limited",
        _times(11, _call("logIn", json={"username": "nobody", "password": "x"})),
        "eleventh-attempt",
    ),
    Case(
        "refreshTokens",
        401,
        "invalid_token",
        _then(_call("refreshTokens"), _call("refreshTokens")),
        "used-twice",
    ),
    Case(
        "refreshTokens",
        429,
        "rate_limited",
        _times(31, _call("refreshTokens", json={"refresh": "x"})),
        "31st-in-a-minute",
    ),
    Case("logOut", 401, "invalid_token", _call("logOut", json={"refresh": "x"}), "not-a-token"),
    Case(
        "listMyEvents",
        422,
        "invalid_cursor",
        _call("listMyEvents", query_string={"after": "bm90LW91cnM"}),
        "not-ours",
    ),
    Case(
        "changePassword",
        403,
        "invalid_credentials",
        _call("changePassword", json={"current_password": "wrong", "new_password": "long enough"}),
        "wrong-current",
    ),
    Case(
        "changePassword",
        422,
        "weak_password",
        _call("changePassword", json={"current_password": f.PASSWORD, "new_password": "password"}),
        "common",
    ),
    Case(
        "createProduct",
        409,
        "sku_taken",
        _call("createProduct", json={**NEW_PRODUCT, "sku": "taken-1"}),
        "sku",
    ),
    Case(
        "createProduct",
        422,
        "invalid_name",
        _call("createProduct", json={**NEW_PRODUCT, "name": " "}),
        "blank",
    ),
    Case(
        "createProduct",
        422,
        "invalid_sku",
        _call("createProduct", json={**NEW_PRODUCT, "sku": "P-000999"}),
        "reserved-form",
    ),
    Case(
        "createProduct",
        422,
        "invalid_product_field",
        _call("createProduct", json={**NEW_PRODUCT, "unit": "  "}),
        "blank-unit",
    ),
    Case("updateProduct", 409, "sku_taken", _call("updateProduct", json={"sku": "TAKEN-1"}), "sku"),
    Case("updateProduct", 422, "invalid_name", _call("updateProduct", json={"name": " "}), "blank"),
    Case(
        "updateProduct",
        422,
        "invalid_sku",
        _call("updateProduct", json={"sku": "P-000999"}),
        "reserved-form",
    ),
    Case(
        "updateProduct",
        422,
        "invalid_product_field",
        _call("updateProduct", json={"unit": " "}),
        "blank-unit",
    ),
    Case(
        "restockProduct",
        422,
        "invalid_quantity",
        _call("restockProduct", json={"quantity": 2_000_000_000}),
        "past-the-maximum",
    ),
    Case("placeOrder", 201, None, _then(_order(key="k-1"), _order(key="k-1")), "replayed"),
    Case("placeOrder", 409, "out_of_stock", _order(quantity=6), "short"),
    Case("placeOrder", 409, "request_in_progress", _key_in_progress, "claimed"),
    Case("placeOrder", 422, "unknown_product", _order(product=MISSING_ID), "unknown"),
    Case(
        "placeOrder",
        422,
        "idempotency_key_reused",
        _then(_order(key="k-1"), _order(quantity=2, key="k-1")),
        "other-body",
    ),
    Case(
        "placeOrder",
        422,
        "validation_error",
        _call("placeOrder", headers={"Idempotency-Key": " "}),
        "blank-key",
    ),
    Case(
        "placeOrder",
        422,
        "unknown_address",
        _call(
            "placeOrder",
            json={"lines": [{"product_id": 1, "quantity": 1}], "address_id": MISSING_ID},
        ),
        "not-yours",
    ),
    Case("placeOrder", 422, "below_minimum_quantity", _pairs(1), "one-of-a-pair"),
    Case("placeOrder", 422, "not_a_case_multiple", _pairs(3), "three-of-pairs"),
    Case("reorder", 201, None, _then(_reorder(key="k-2"), _reorder(key="k-2")), "replayed"),
    Case(
        "reorder",
        409,
        "out_of_stock",
        _reorder(first=_staff_patch(quantity_in_stock=0)),
        "none-left",
    ),
    Case("reorder", 409, "request_in_progress", _reorder_key_in_progress, "claimed"),
    Case(
        "reorder",
        422,
        "unknown_address",
        _reorder(json={"address_id": MISSING_ID}),
        "not-yours",
    ),
    Case(
        "reorder",
        422,
        "below_minimum_quantity",
        _reorder(first=_staff_patch(min_order_quantity=2)),
        "minimum-raised",
    ),
    Case("reorder", 422, "not_a_case_multiple", _reorder_of_three_then_sold_in_pairs, "cases"),
    Case(
        "reorder",
        422,
        "idempotency_key_reused",
        _reorder(key="k-1", first=_order(quantity=2, key="k-1")),
        "key-of-another-order",
    ),
    Case(
        "getInvoice",
        409,
        "invoice_not_issued",
        lambda w: VALID["getInvoice"].send(w, ids={"shipped": w.ids["order"]}),
        "placed",
    ),
    Case(
        "getAnyInvoice",
        409,
        "invoice_not_issued",
        lambda w: VALID["getAnyInvoice"].send(w, ids={"shipped": w.ids["order"]}),
        "placed",
    ),
    Case("addAddress", 409, "address_book_full", _times(20, _call("addAddress")), "21st"),
    Case(
        "addAddress",
        422,
        "invalid_country",
        _call("addAddress", json={**NEW_ADDRESS, "country": "XX"}),
        "unassigned",
    ),
    Case(
        "addAddress",
        422,
        "invalid_address",
        _call("addAddress", json={**NEW_ADDRESS, "city": "   "}),
        "blank-city",
    ),
    Case(
        "updateAddress",
        422,
        "default_address_required",
        _call("updateAddress", json={"is_default": False}),
        "undefault",
    ),
    Case(
        "updateAddress",
        422,
        "invalid_country",
        _call("updateAddress", json={"country": "zz"}),
        "unassigned",
    ),
    Case(
        "updateAddress",
        422,
        "invalid_address",
        _call("updateAddress", json={"recipient": "  "}),
        "blank-recipient",
    ),
    Case(
        "updateProduct",
        422,
        "invalid_product_field",
        _call("updateProduct", json={"min_order_quantity": 3, "case_size": 2}),
        "minimum-not-whole-cases",
    ),
    Case(
        "cancelOrder",
        409,
        "order_not_cancellable",
        lambda w: VALID["cancelOrder"].send(w, ids={"order": w.ids["cancelled"]}),
        "cancelled",
    ),
    Case(
        "shipOrder",
        409,
        "invalid_status_transition",
        _then(_call("shipOrder"), _call("shipOrder")),
        "twice",
    ),
    Case(
        "deliverOrder",
        409,
        "invalid_status_transition",
        _then(_call("deliverOrder"), _call("deliverOrder")),
        "twice",
    ),
    Case(
        "cancelAnyOrder",
        409,
        "order_not_cancellable",
        _then(_call("cancelAnyOrder"), _call("cancelAnyOrder")),
        "twice",
    ),
    Case(
        "createWebhookEndpoint",
        422,
        "unsafe_webhook_url",
        _call("createWebhookEndpoint", json={**NEW_WEBHOOK, "url": "ftp://erp.example.com/"}),
        "not-https",
    ),
    Case(
        "updateWebhookEndpoint",
        422,
        "unsafe_webhook_url",
        _call("updateWebhookEndpoint", json={"url": "gopher://erp.example.com/"}),
        "not-https",
    ),
    Case(
        "retryWebhookDelivery",
        409,
        "delivery_not_failed",
        lambda w: VALID["retryWebhookDelivery"].send(
            w, ids={"failed_delivery": w.ids["pending_delivery"]}
        ),
        "pending",
    ),
]

CASES = [case for name, call in VALID.items() for case in _generic(name, call)] + SPECIFIC
# With an unreachable database: what each operation answers.
UNREACHABLE_ANSWERS = {
    name: (200, None)
    if name == "checkHealth"
    else (503, "service_unavailable")
    if name == "checkReadiness"
    else (503, "database_unavailable")
    for name in VALID
}


# --- what is checked of every answer -------------------------------------------------------------


def assert_documented(spec: dict[str, Any], case: Case, answer: TestResponse) -> None:
    body = answer.get_data()[:300].decode(errors="replace")  # a PDF too
    where = f"{case.id}: {answer.status_code} {body}"
    assert answer.status_code == case.status, where
    responses = operations(spec)[case.operation]["responses"]
    assert str(case.status) in responses, f"{where}: status not documented"
    response = responses[str(case.status)]
    if case.code is None:
        assert answer.status_code < 400, where
    else:
        assert answer.mimetype == "application/problem+json", where
        assert answer.get_json()["code"] == case.code, where
        content = response["content"]["application/problem+json"]
        assert case.code in content["schema"]["allOf"][1]["properties"]["code"]["enum"], where
    declared = declared_headers(spec, response)
    sent = {name for name in RESPONSE_HEADERS if name in answer.headers}
    assert sent <= set(declared), f"{where}: headers sent but not declared"
    required = {name for name, needed in declared.items() if needed}
    assert required <= set(answer.headers.keys()), f"{where}: required headers missing"


def declared_headers(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, bool]:
    """The headers a documented response declares, by name, and whether each is required."""
    found = {}
    for name, header in response.get("headers", {}).items():
        if "$ref" in header:
            header = spec["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        found[name] = bool(header.get("required"))
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_answer_is_documented_for_its_operation(case: Case, world: World) -> None:
    assert_documented(document(world.client), case, case.send(world))


@pytest.fixture
def unreachable_world(database: Database) -> Iterator[World]:
    """The app on a database that cannot be reached; tokens made by the app's own token
    service, since no login can happen."""
    settings = make_settings(database, database_url=UNREACHABLE)
    container = build_container(settings)
    app = _with_fault_switch(create_app(settings, container=container))
    tokens = container.token_service()
    yield World(
        client=app.test_client(),
        ids={**dict.fromkeys(PATH_IDS, 1), "pairs": 1},
        usernames={"customer": "alice"},
        tokens={
            "customer": tokens.issue_access(2, False, "login-2", 0),
            "staff": tokens.issue_access(1, True, "login-1", 0),
        },
        refresh=tokens.issue_refresh(2, "login-2").token,
    )
    unwire_app(app)


@pytest.mark.parametrize("operation", list(VALID))
def test_every_operation_answers_an_unreachable_database_as_documented(
    operation: str, unreachable_world: World
) -> None:
    status, code = UNREACHABLE_ANSWERS[operation]
    case = Case(operation, status, code, _call(operation), "unreachable-database")
    if operation in ("placeOrder",):
        case = Case(operation, status, code, _order(product=1), "unreachable-database")
    assert_documented(document(unreachable_world.client), case, case.send(unreachable_world))


# Documented on purpose though no request reaches them: the schema refuses such values first
# (422 validation_error), and the domain's own check stands behind it.
BEHIND_THE_SCHEMA = {
    ("createProduct", 422, "invalid_price"),
    ("createProduct", 422, "invalid_quantity"),
    ("updateProduct", 422, "invalid_price"),
    ("updateProduct", 422, "invalid_quantity"),
    ("placeOrder", 422, "duplicate_product"),
}


def test_every_documented_code_is_sent_by_a_case_here(client: FlaskClient) -> None:
    spec = document(client)
    documented = set()
    before_the_app = {
        (cls.status, cls.code)
        for cls in error_table().values()
        if issubclass(cls, HttpProblem) and cls.before_the_app
    }
    for name, op in operations(spec).items():
        for status, response in op["responses"].items():
            content = response.get("content", {}).get("application/problem+json")
            codes = (
                content["schema"]["allOf"][1]["properties"]["code"]["enum"] if content else [None]
            )
            for code in codes:
                if (int(status), code) not in before_the_app:
                    documented.add((name, int(status), code))
    driven = {(case.operation, case.status, case.code) for case in CASES}
    driven |= {(name, *answer) for name, answer in UNREACHABLE_ANSWERS.items()}
    assert documented - driven - BEHIND_THE_SCHEMA == set(), "documented, but no case sends it"
    assert documented >= BEHIND_THE_SCHEMA
    assert driven - documented == set(), "sent, but not documented"
    assert set(VALID) == set(operations(spec)), "an operation without a valid call here"


def test_every_operation_documents_the_servers_own_refusals(client: FlaskClient) -> None:
    for name, op in operations(document(client)).items():
        for status, code in (("414", "uri_too_long"), ("431", "header_fields_too_large")):
            content = op["responses"][status]["content"]["application/problem+json"]
            assert content["schema"]["allOf"][1]["properties"]["code"]["enum"] == [code], name
            assert "headers" not in op["responses"][status], name  # none of the app's
