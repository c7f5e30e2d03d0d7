"""v1.2 through HTTP, on SQLite and PostgreSQL: the address book, where an order goes, cases and
minimums, reorder, and the invoice (its number, its PDF's text, its ETag)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pypdf
import pytest
from flask.testing import FlaskClient

from opply.entrypoints.container import Container
from tests.integration import factories as f

ADDRESS = {
    "recipient": "Jane Baker",
    "line1": "12 Mill Lane",
    "postal_code": "EC1A 1BB",
    "city": "London",
    "country": "gb",
}
BOOK = "/api/v1/me/addresses/"


@pytest.fixture
def customer(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container).username)


@pytest.fixture
def other(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container).username)


@pytest.fixture
def staff(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container, staff=True).username)


def _add(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    answer = client.post(BOOK, json={**ADDRESS, **fields}, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    assert answer.headers["Location"] == f"{BOOK}{answer.get_json()['id']}/"
    body: dict[str, Any] = answer.get_json()
    return body


def _book(client: FlaskClient, headers: dict[str, str]) -> list[tuple[str, bool]]:
    results = client.get(BOOK, headers=headers).get_json()["results"]
    return [(a["recipient"], a["is_default"]) for a in results]


def _problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    assert body["code"] == code, body
    return body


def _product(
    client: FlaskClient, staff: dict[str, str], name: str = "Oat flour", **fields: Any
) -> dict[str, Any]:
    body = {"name": name, "price": "10.00", "quantity_in_stock": 100, **fields}
    answer = client.post("/api/v1/products/", json=body, headers=staff)
    assert answer.status_code == 201, answer.get_json()
    product: dict[str, Any] = answer.get_json()
    return product


def _order(
    client: FlaskClient, headers: dict[str, str], *lines: tuple[int, int], **extra: Any
) -> Any:
    return client.post("/api/v1/orders/", json={**f.order_body(*lines), **extra}, headers=headers)


# --- the address book ---------------------------------------------------------------------------


def test_the_first_address_is_the_default_and_the_country_is_answered_upper_case(
    client: FlaskClient, customer: dict[str, str]
) -> None:
    first = _add(client, customer, label="Warehouse", phone="+44 (20) 7946-0000")
    assert first == {
        "id": first["id"],
        "label": "Warehouse",
        "recipient": "Jane Baker",
        "company": "",
        "line1": "12 Mill Lane",
        "line2": "",
        "postal_code": "EC1A 1BB",
        "city": "London",
        "country": "GB",
        "phone": "+44 (20) 7946-0000",
        "is_default": True,
    }
    assert client.get(f"{BOOK}{first['id']}/", headers=customer).get_json() == first


def test_a_new_default_moves_it_and_the_book_lists_the_default_then_the_newest(
    client: FlaskClient, customer: dict[str, str]
) -> None:
    _add(client, customer, recipient="first")
    _add(client, customer, recipient="second", is_default=False)
    third = _add(client, customer, recipient="third", is_default=True)
    assert third["is_default"] is True
    assert _book(client, customer) == [("third", True), ("second", False), ("first", False)]


def test_a_patch_may_move_the_default_but_not_take_it_away(
    client: FlaskClient, customer: dict[str, str]
) -> None:
    first = _add(client, customer, recipient="first")
    second = _add(client, customer, recipient="second")
    moved = client.patch(f"{BOOK}{second['id']}/", json={"is_default": True}, headers=customer)
    assert moved.get_json()["is_default"] is True
    assert _book(client, customer) == [("second", True), ("first", False)]
    refused = client.patch(f"{BOOK}{second['id']}/", json={"is_default": False}, headers=customer)
    _problem(refused, 422, "default_address_required")
    renamed = client.patch(
        f"{BOOK}{first['id']}/", json={"city": "Leeds", "is_default": False}, headers=customer
    )
    assert (renamed.get_json()["city"], renamed.get_json()["is_default"]) == ("Leeds", False)
    _problem(
        client.patch(f"{BOOK}{first['id']}/", json={}, headers=customer), 422, "validation_error"
    )


def test_deleting_the_default_makes_the_most_recently_added_left_the_default(
    client: FlaskClient, customer: dict[str, str]
) -> None:
    first = _add(client, customer, recipient="first")
    _add(client, customer, recipient="second")
    _add(client, customer, recipient="third")
    assert client.delete(f"{BOOK}{first['id']}/", headers=customer).status_code == 204
    assert _book(client, customer) == [("third", True), ("second", False)]
    assert client.get(f"{BOOK}{first['id']}/", headers=customer).status_code == 404


def test_another_customers_address_is_a_404_for_every_operation(
    client: FlaskClient, customer: dict[str, str], other: dict[str, str]
) -> None:
    mine = _add(client, customer)
    path = f"{BOOK}{mine['id']}/"
    for answer in (
        client.get(path, headers=other),
        client.patch(path, json={"city": "Leeds"}, headers=other),
        client.delete(path, headers=other),
    ):
        _problem(answer, 404, "not_found")
    assert client.get(path, headers=customer).get_json() == mine
    assert _book(client, other) == []


def test_a_21st_address_is_a_409_and_the_book_keeps_20(
    client: FlaskClient, customer: dict[str, str]
) -> None:
    for n in range(20):
        _add(client, customer, recipient=f"r{n}")
    _problem(client.post(BOOK, json=ADDRESS, headers=customer), 409, "address_book_full")
    assert len(_book(client, customer)) == 20


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"country": "XX"}, 422, "invalid_country", "country"),
        ({"country": "GBR"}, 422, "validation_error", "country"),
        ({"phone": "call me"}, 422, "validation_error", "phone"),
        ({"recipient": ""}, 422, "validation_error", "recipient"),
        ({"postal_code": "1" * 17}, 422, "validation_error", "postal_code"),
        ({"label": "l" * 65}, 422, "validation_error", "label"),
        ({"city": "   "}, 422, "invalid_address", None),
        ({"owner": 3}, 422, "validation_error", "owner"),
    ],
)
def test_an_address_out_of_bounds_is_a_422_naming_the_field(
    client: FlaskClient,
    customer: dict[str, str],
    fields: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    body = _problem(client.post(BOOK, json={**ADDRESS, **fields}, headers=customer), status, code)
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    assert _book(client, customer) == []


# --- where an order goes ------------------------------------------------------------------------


def test_an_order_goes_to_the_default_address_or_the_one_named_and_keeps_its_copy(
    client: FlaskClient, customer: dict[str, str], uow: Any
) -> None:
    product = f.product(uow, stock=10)
    nowhere = _order(client, customer, (product.id, 1)).get_json()
    assert nowhere["delivery_address"] is None  # an empty book may still order
    home = _add(client, customer, recipient="Home", company="Kaffee & Co")
    shop = _add(client, customer, recipient="Shop")
    to_default = _order(client, customer, (product.id, 1)).get_json()
    to_shop = _order(client, customer, (product.id, 1), address_id=shop["id"]).get_json()
    assert to_default["delivery_address"] == {
        "recipient": "Home",
        "company": "Kaffee & Co",
        "line1": "12 Mill Lane",
        "line2": "",
        "postal_code": "EC1A 1BB",
        "city": "London",
        "country": "GB",
        "phone": "",
    }
    assert to_shop["delivery_address"]["recipient"] == "Shop"
    client.patch(f"{BOOK}{home['id']}/", json={"recipient": "Moved"}, headers=customer)
    client.delete(f"{BOOK}{shop['id']}/", headers=customer)
    again = client.get(f"/api/v1/orders/{to_shop['id']}/", headers=customer).get_json()
    assert again["delivery_address"] == to_shop["delivery_address"]
    history = client.get("/api/v1/orders/", headers=customer).get_json()["results"]
    assert [o["delivery_address"] and o["delivery_address"]["recipient"] for o in history] == [
        "Shop",
        "Home",
        None,
    ]


def test_an_address_that_is_not_the_callers_is_a_422_and_takes_no_stock(
    client: FlaskClient, customer: dict[str, str], other: dict[str, str], uow: Any
) -> None:
    product = f.product(uow, stock=10)
    theirs = _add(client, other)
    answer = _order(client, customer, (product.id, 1), address_id=theirs["id"])
    _problem(answer, 422, "unknown_address")
    assert client.get(f"/api/v1/products/{product.id}/").get_json()["quantity_in_stock"] == 10


def test_the_address_is_part_of_what_an_idempotency_key_fingerprints(
    client: FlaskClient, customer: dict[str, str], uow: Any
) -> None:
    product = f.product(uow, stock=10)
    first, second = _add(client, customer), _add(client, customer)
    keyed = {**customer, "Idempotency-Key": "k-address"}
    placed = _order(client, keyed, (product.id, 1), address_id=first["id"])
    replay = _order(client, keyed, (product.id, 1), address_id=first["id"])
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == placed.get_json()
    _problem(
        _order(client, keyed, (product.id, 1), address_id=second["id"]),
        422,
        "idempotency_key_reused",
    )


def test_staff_see_where_an_order_goes(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str], uow: Any
) -> None:
    product = f.product(uow)
    _add(client, customer, recipient="Żurek Bar")
    order = _order(client, customer, (product.id, 1)).get_json()
    seen = client.get(f"/api/v1/staff/orders/{order['id']}/", headers=staff).get_json()
    assert seen["delivery_address"]["recipient"] == "Żurek Bar"


# --- cases and minimums ---------------------------------------------------------------------------


def test_staff_set_minimums_that_are_whole_cases(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    product = _product(client, staff, min_order_quantity=12, case_size=6)
    assert (product["min_order_quantity"], product["case_size"]) == (12, 6)
    path = f"/api/v1/products/{product['id']}/"
    _problem(client.patch(path, json={"case_size": 5}, headers=staff), 422, "invalid_product_field")
    _problem(
        client.post(
            "/api/v1/products/",
            json={"name": "X", "price": "1.00", "min_order_quantity": 3, "case_size": 2},
            headers=staff,
        ),
        422,
        "invalid_product_field",
    )
    for bad in ({"case_size": 0}, {"min_order_quantity": 10_001}, {"case_size": "6"}):
        body = _problem(client.patch(path, json=bad, headers=staff), 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == list(bad)
    changed = client.patch(path, json={"min_order_quantity": 4, "case_size": 2}, headers=staff)
    assert (changed.get_json()["min_order_quantity"], changed.get_json()["case_size"]) == (4, 2)


def test_every_line_breaking_a_rule_is_listed_and_a_minimum_names_the_answer(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    cases = _product(client, staff, "Oat milk", min_order_quantity=12, case_size=6)
    pairs = _product(client, staff, "Yeast", min_order_quantity=2, case_size=2)
    plain = _product(client, staff, "Salt")
    body = _problem(
        _order(client, customer, (cases["id"], 6), (pairs["id"], 3), (plain["id"], 1)),
        422,
        "below_minimum_quantity",
    )
    assert sorted(body["errors"], key=lambda e: e["product_id"]) == [
        {"product_id": cases["id"], "quantity": 6, "min_order_quantity": 12, "case_size": 6},
        {"product_id": pairs["id"], "quantity": 3, "min_order_quantity": 2, "case_size": 2},
    ]
    only_cases = _order(client, customer, (cases["id"], 13), (plain["id"], 1))
    assert _problem(only_cases, 422, "not_a_case_multiple")["errors"] == [
        {"product_id": cases["id"], "quantity": 13, "min_order_quantity": 12, "case_size": 6}
    ]
    stock = client.get(f"/api/v1/products/{cases['id']}/").get_json()["quantity_in_stock"]
    assert stock == 100
    assert _order(client, customer, (cases["id"], 18), (pairs["id"], 2)).status_code == 201


def test_rules_are_checked_after_unknown_products_and_before_stock(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    cases = _product(
        client, staff, "Oat milk", min_order_quantity=12, case_size=6, quantity_in_stock=5
    )
    _problem(_order(client, customer, (cases["id"], 6), (999_999, 1)), 422, "unknown_product")
    _problem(_order(client, customer, (cases["id"], 6)), 422, "below_minimum_quantity")
    _problem(_order(client, customer, (cases["id"], 12)), 409, "out_of_stock")


def test_orders_placed_before_a_rule_changed_keep_their_lines(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    product = _product(client, staff)
    order = _order(client, customer, (product["id"], 3)).get_json()
    client.patch(
        f"/api/v1/products/{product['id']}/",
        json={"min_order_quantity": 12, "case_size": 6},
        headers=staff,
    )
    again = client.get(f"/api/v1/orders/{order['id']}/", headers=customer).get_json()
    assert again == order


# --- reorder ------------------------------------------------------------------------------------


def test_a_reorder_places_the_same_lines_at_todays_prices_from_any_status(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    a, b = _product(client, staff, "A"), _product(client, staff, "B")
    first = _order(client, customer, (a["id"], 2), (b["id"], 1)).get_json()
    client.post(f"/api/v1/orders/{first['id']}/cancel/", headers=customer)
    client.patch(f"/api/v1/products/{a['id']}/", json={"price": "11.00"}, headers=staff)
    address = _add(client, customer)
    answer = client.post(f"/api/v1/orders/{first['id']}/reorder/", headers=customer)
    assert answer.status_code == 201, answer.get_json()
    again = answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/orders/{again['id']}/"
    assert again["id"] != first["id"]
    assert again["status"] == "placed"
    assert [
        (line["product_id"], line["quantity"], line["unit_price"]) for line in again["lines"]
    ] == [
        (a["id"], 2, "11.00"),
        (b["id"], 1, "10.00"),
    ]
    assert again["delivery_address"]["recipient"] == address["recipient"]
    stock = client.get(f"/api/v1/products/{a['id']}/").get_json()["quantity_in_stock"]
    assert stock == 98


def test_a_reorder_of_another_customers_order_is_a_404_and_a_keyed_retry_replays(
    client: FlaskClient, customer: dict[str, str], other: dict[str, str], staff: dict[str, str]
) -> None:
    product = _product(client, staff)
    first = _order(client, customer, (product["id"], 2)).get_json()
    path = f"/api/v1/orders/{first['id']}/reorder/"
    _problem(client.post(path, headers=other), 404, "not_found")
    keyed = {**customer, "Idempotency-Key": "again-1"}
    placed = client.post(path, json={}, headers=keyed)
    replay = client.post(path, json={}, headers=keyed)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == placed.get_json()
    stock = client.get(f"/api/v1/products/{product['id']}/").get_json()["quantity_in_stock"]
    assert stock == 96
    theirs = _add(client, other)
    _problem(
        client.post(path, json={"address_id": theirs["id"]}, headers=customer),
        422,
        "unknown_address",
    )


# --- invoices -----------------------------------------------------------------------------------

NAMES = ("Crème fraîche", "Żurek", "Σκόρδο", "Квас", "Kaffee & Co")


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_an_order_is_invoiced_when_it_ships_with_a_pdf_of_real_text(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    products = [
        _product(client, staff, name, vat_rate=rate, sku=f"SKU-{n}")
        for n, (name, rate) in enumerate(
            zip(NAMES, ("7.00", "19.00", "7.00", "0.00", "19.00"), strict=True)
        )
    ]
    _add(client, customer, recipient="Jane Baker", company="Kaffee & Co", city="Łódź", country="pl")
    order = _order(client, customer, *((p["id"], n + 1) for n, p in enumerate(products))).get_json()
    assert order["invoice_number"] is None
    invoice = f"/api/v1/orders/{order['id']}/invoice/"
    _problem(client.get(invoice, headers=customer), 409, "invoice_not_issued")

    shipped = client.post(f"/api/v1/staff/orders/{order['id']}/ship/", headers=staff).get_json()
    year = datetime.now(UTC).year
    assert re.fullmatch(rf"INV-{year}-\d{{6}}", shipped["invoice_number"])
    answer = client.get(invoice, headers=customer)
    assert answer.status_code == 200
    assert answer.mimetype == "application/pdf"
    assert (
        answer.headers["Content-Disposition"]
        == f'inline; filename="{shipped["invoice_number"]}.pdf"'
    )
    text = _text(answer.get_data())
    for expected in (
        *NAMES,
        shipped["invoice_number"],
        shipped["shipped_at"][:10],
        "Opply Demo GmbH",
        "VAT ID: DE000000000",
        "Łódź",
        "PL",
        "SKU-3",
        f"Subtotal (net) {order['subtotal']} EUR",
        f"VAT total {order['vat_total']} EUR",
        f"Total {order['total']} EUR",
        "VAT 19.00% on",
        "VAT 0.00% on",
    ):
        assert expected in text, expected
    for line in order["lines"]:
        assert f"{line['line_net']} {line['line_vat']} {line['line_total']}" in text


def test_an_invoice_never_changes_and_a_matching_etag_is_a_304(
    client: FlaskClient, customer: dict[str, str], other: dict[str, str], staff: dict[str, str]
) -> None:
    product = _product(client, staff)
    order = _order(client, customer, (product["id"], 1)).get_json()
    client.post(f"/api/v1/staff/orders/{order['id']}/ship/", headers=staff)
    path = f"/api/v1/orders/{order['id']}/invoice/"
    first = client.get(path, headers=customer)
    client.post(f"/api/v1/staff/orders/{order['id']}/deliver/", headers=staff)
    client.patch(f"/api/v1/products/{product['id']}/", json={"name": "Renamed"}, headers=staff)
    second = client.get(path, headers=customer)
    assert second.get_data() == first.get_data()
    assert second.headers["ETag"] == first.headers["ETag"]
    cached = client.get(path, headers={**customer, "If-None-Match": first.headers["ETag"]})
    assert cached.status_code == 304
    assert cached.get_data() == b""
    staff_copy = client.get(f"/api/v1/staff/orders/{order['id']}/invoice/", headers=staff)
    assert staff_copy.get_data() == first.get_data()
    _problem(client.get(path, headers=other), 404, "not_found")


def test_invoice_numbers_follow_each_other_and_a_refused_ship_takes_none(
    client: FlaskClient, customer: dict[str, str], staff: dict[str, str]
) -> None:
    product = _product(client, staff)
    ids = [_order(client, customer, (product["id"], 1)).get_json()["id"] for _ in range(3)]
    client.post(f"/api/v1/orders/{ids[1]}/cancel/", headers=customer)
    numbers = []
    for order_id in ids:
        answer = client.post(f"/api/v1/staff/orders/{order_id}/ship/", headers=staff)
        numbers.append(answer.get_json().get("invoice_number"))
    assert numbers[1] is None  # a cancelled order is refused and invoiced never
    counters = [int(n.rsplit("-", 1)[1]) for n in (numbers[0], numbers[2])]
    assert counters[1] == counters[0] + 1
