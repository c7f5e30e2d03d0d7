"""The staff admin site at /admin/, through Flask's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import Database, count_statements

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = [
    "/admin/",
    "/admin/products/",
    "/admin/products/new/",
    "/admin/orders/",
    "/admin/users/",
    "/admin/users/new/",
    "/admin/webhooks/",
    "/admin/webhooks/new/",
]


def csrf(client: FlaskClient, path: str = "/admin/login/") -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def admin_login(client: FlaskClient, username: str, password: str = f.PASSWORD) -> TestResponse:
    token = csrf(client)
    return client.post(
        "/admin/login/",
        data={"username": username, "password": password, "csrf_token": token},
    )


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None) -> TestResponse:
    """A form post as the page sends it: with the session's CSRF token, following the redirect."""
    token = csrf(client, "/admin/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=True)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def staff(client: FlaskClient, container: Container) -> FlaskClient:
    """The test client, logged in to the admin as a staff member."""
    user = f.user(container, staff=True)
    response = admin_login(client, user.username)
    assert response.status_code == 303
    return client


def api_products(client: FlaskClient, search: str) -> list[dict[str, Any]]:
    body = client.get("/api/v1/products/", query_string={"search": search}).get_json()
    results: list[dict[str, Any]] = body["results"]
    return results


def place_order(client: FlaskClient, customer: str, *lines: tuple[int, int]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/orders/", json=f.order_body(*lines), headers=f.bearer(client, customer)
    )
    assert response.status_code == 201, response.get_json()
    order: dict[str, Any] = response.get_json()
    return order


# --- who may come in ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/?next=")
    login_page = client.get(response.headers["Location"])
    assert login_page.status_code == 200
    assert "Staff log in" in text(login_page)


def test_a_customer_with_the_right_password_is_refused(
    client: FlaskClient, container: Container
) -> None:
    customer = f.user(container)
    response = admin_login(client, customer.username)
    assert response.status_code == 403
    assert "not staff" in text(response)
    assert client.get("/admin/products/").status_code == 302


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(
    client: FlaskClient, container: Container
) -> None:
    staff_user = f.user(container, staff=True)
    wrong = admin_login(client, staff_user.username, "not-the-password")
    unknown = admin_login(client, "nobody-here")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password" in text(wrong)
    assert "Wrong username or password" in text(unknown)
    assert client.get("/admin/").status_code == 302


def test_staff_log_in_with_a_cookie_that_scripts_and_other_sites_cannot_use(
    client: FlaskClient, container: Container
) -> None:
    staff_user = f.user(container, staff=True)
    response = admin_login(client, staff_user.username)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("opply_admin=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http in this test
    home = client.get("/admin/")
    assert home.status_code == 200
    assert "Shop at a glance" in text(home)
    assert staff_user.username in text(home)


def test_the_api_neither_reads_nor_writes_the_admin_session(
    app: Flask, client: FlaskClient, container: Container
) -> None:
    staff_user = f.user(container, staff=True)
    admin_login(client, staff_user.username)  # the client now holds a valid admin cookie
    with app.test_request_context("/api/v1/products/"):
        from flask import session

        assert session.__class__.__name__ == "NullSession"  # opened for nothing, costs nothing
    answer = client.get("/api/v1/products/")
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    assert "Vary" not in answer.headers or "Cookie" not in answer.headers["Vary"]


def test_the_session_cookie_is_secure_over_https(client: FlaskClient, container: Container) -> None:
    staff_user = f.user(container, staff=True)
    page = client.get("/admin/login/", base_url="https://localhost")
    match = CSRF_RE.search(text(page))
    assert match
    response = client.post(
        "/admin/login/",
        base_url="https://localhost",
        data={"username": staff_user.username, "password": f.PASSWORD, "csrf_token": match[1]},
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


def test_after_login_the_visitor_goes_back_to_the_page_they_asked_for(
    client: FlaskClient, container: Container
) -> None:
    staff_user = f.user(container, staff=True)
    token = csrf(client)
    response = client.post(
        "/admin/login/",
        data={
            "username": staff_user.username,
            "password": f.PASSWORD,
            "csrf_token": token,
            "next": "/admin/orders/?status=placed",
        },
    )
    assert response.headers["Location"] == "/admin/orders/?status=placed"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/api/"])
def test_login_never_redirects_outside_the_admin(
    client: FlaskClient, container: Container, target: str
) -> None:
    staff_user = f.user(container, staff=True)
    token = csrf(client)
    response = client.post(
        "/admin/login/",
        data={
            "username": staff_user.username,
            "password": f.PASSWORD,
            "csrf_token": token,
            "next": target,
        },
    )
    assert response.headers["Location"] == "/admin/"


def test_logging_out_ends_the_session(staff: FlaskClient) -> None:
    assert staff.get("/admin/logout/").status_code == 405  # only a form post logs out
    response = post(staff, "/admin/logout/")
    assert "You are logged out" in text(response)
    assert staff.get("/admin/products/").status_code == 302


def test_a_session_ends_at_once_when_its_staff_account_is_deactivated(
    client: FlaskClient, container: Container
) -> None:
    staff_user = f.user(container, staff=True)
    admin_login(client, staff_user.username)
    assert client.get("/admin/products/").status_code == 200
    container.set_user_active()(staff_user.username, False)
    response = client.get("/admin/products/", follow_redirects=True)
    assert response.request.path == "/admin/login/"
    assert "no longer active staff" in text(response)


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
    staff: FlaskClient, token: str | None
) -> None:
    data = {"name": "Forged flour", "price": "1.00", "quantity_in_stock": "5"}
    if token is not None:
        data["csrf_token"] = token
    response = staff.post("/admin/products/new/", data=data)
    assert response.status_code == 400
    assert "did not come from this site" in text(response)
    assert api_products(staff, "Forged flour") == []


def test_the_login_form_needs_its_csrf_token_too(client: FlaskClient, container: Container) -> None:
    staff_user = f.user(container, staff=True)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/", data={"username": staff_user.username, "password": f.PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_a_csrf_token_from_another_session_is_refused(
    staff: FlaskClient, app: Any, container: Container
) -> None:
    other = app.test_client()
    other_token = csrf(other)
    response = staff.post(
        "/admin/products/new/",
        data={"name": "Cross flour", "price": "1.00", "csrf_token": other_token},
    )
    assert response.status_code == 400
    assert api_products(staff, "Cross flour") == []


def test_the_json_api_needs_no_csrf_token(staff: FlaskClient, container: Container) -> None:
    api_staff = f.user(container, staff=True)
    response = staff.post(
        "/api/v1/products/",
        json={"name": "API flour", "price": "2.00", "quantity_in_stock": 1},
        headers=f.bearer(staff, api_staff.username),
    )
    assert response.status_code == 201


def test_admin_pages_forbid_framing_and_caching(staff: FlaskClient) -> None:
    response = staff.get("/admin/products/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_admin_is_not_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert paths  # the document is there
    assert not [p for p in paths if p.startswith("/admin")]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_staff(staff: FlaskClient, path: str) -> None:
    response = staff.get(path)
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert "Log out" in text(response)


def test_the_stylesheet_is_served_by_the_app_itself(client: FlaskClient) -> None:
    with client.get("/admin/static/admin.css") as response:
        assert response.status_code == 200
        assert "text/css" in response.content_type
        assert ".topbar" in text(response)


# --- products ---------------------------------------------------------------------------------


def test_staff_create_a_product_that_the_api_then_lists(staff: FlaskClient) -> None:
    response = post(
        staff,
        "/admin/products/new/",
        {"name": "Spelt flour 10kg", "price": "7.40", "quantity_in_stock": "12"},
    )
    assert response.status_code == 200
    assert "Product &#39;Spelt flour 10kg&#39; created." in text(response)
    product_id = int(response.request.path.split("/")[3])
    assert api_products(staff, "Spelt flour") == [
        f.product_json(product_id, "Spelt flour 10kg", "7.40", 12)
    ]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"name": "Negative stock", "price": "1.00", "quantity_in_stock": "-3"},
            "Quantity in stock: Must be a whole number from 0 to",
        ),
        ({"name": "Bad price", "price": "a lot", "quantity_in_stock": "1"}, "Price: Must be"),
        ({"name": "Too precise", "price": "1.005", "quantity_in_stock": "1"}, "two decimal"),
        ({"name": "Below zero", "price": "-1", "quantity_in_stock": "1"}, "non-negative amount"),
        ({"name": "   ", "price": "1.00", "quantity_in_stock": "1"}, "Name must not be blank"),
    ],
)
def test_a_product_form_with_bad_values_says_why_and_creates_nothing(
    staff: FlaskClient, form: dict[str, str], message: str
) -> None:
    response = post(staff, "/admin/products/new/", form)
    assert response.status_code == 422
    assert message in text(response)
    assert f'value="{form["name"]}"' in text(response)  # what was typed is kept
    assert staff.get("/api/v1/products/").get_json()["count"] == 0


def test_staff_rename_and_reprice_a_product(staff: FlaskClient, uow: Any) -> None:
    made = f.product(uow, name="Rye flour", price="3.00", stock=4)
    response = post(
        staff, f"/admin/products/{made.id}/", {"name": "Rye flour 5kg", "price": "3.25"}
    )
    assert "Product saved." in text(response)
    assert staff.get(f"/api/v1/products/{made.id}/").get_json() == f.product_json(
        made.id, "Rye flour 5kg", "3.25", 4
    )


def test_an_edit_with_a_bad_price_says_why_and_changes_nothing(
    staff: FlaskClient, uow: Any
) -> None:
    made = f.product(uow, name="Rye flour", price="3.00")
    response = post(staff, f"/admin/products/{made.id}/", {"name": "Renamed", "price": "-2"})
    assert response.status_code == 422
    assert "non-negative amount" in text(response)
    assert staff.get(f"/api/v1/products/{made.id}/").get_json()["name"] == "Rye flour"


def test_staff_restock_a_product_by_a_quantity(staff: FlaskClient, uow: Any) -> None:
    made = f.product(uow, name="Barley", stock=3)
    response = post(staff, f"/admin/products/{made.id}/restock/", {"quantity": "10"})
    assert "Added 10 to stock." in text(response)
    assert '<span id="stock">13</span>' in text(response)
    assert staff.get(f"/api/v1/products/{made.id}/").get_json()["quantity_in_stock"] == 13


@pytest.mark.parametrize("quantity", ["0", "-5", "ten", ""])
def test_a_restock_that_would_not_add_stock_is_refused(
    staff: FlaskClient, uow: Any, quantity: str
) -> None:
    made = f.product(uow, name="Barley", stock=3)
    response = post(staff, f"/admin/products/{made.id}/restock/", {"quantity": quantity})
    assert response.status_code == 200
    assert "flash-error" in text(response)
    assert staff.get(f"/api/v1/products/{made.id}/").get_json()["quantity_in_stock"] == 3


def test_restocking_from_the_list_goes_back_to_the_list(staff: FlaskClient, uow: Any) -> None:
    made = f.product(uow, name="Millet", stock=0)
    response = post(
        staff,
        f"/admin/products/{made.id}/restock/",
        {"quantity": "4", "next": "/admin/products/?q=Millet"},
    )
    assert response.request.path == "/admin/products/"
    assert "Added 4 to stock." in text(response)


def test_an_unknown_product_is_a_404_page(staff: FlaskClient) -> None:
    response = staff.get("/admin/products/999999/")
    assert response.status_code == 404
    assert "Product 999999 does not exist" in text(response)
    assert response.content_type.startswith("text/html")


def names_in(html: str, names: list[str]) -> list[str]:
    """The given names in the order the page shows them."""
    return sorted(names, key=html.index)


def test_the_product_list_searches_by_name_and_sorts_by_each_column(
    staff: FlaskClient, uow: Any
) -> None:
    f.product(uow, name="Bean B", price="3.00", stock=1)
    f.product(uow, name="Bean A", price="9.00", stock=5)
    f.product(uow, name="Bean C", price="1.00", stock=3)
    f.product(uow, name="Lentils", price="2.00", stock=2)
    names = ["Bean A", "Bean B", "Bean C"]

    def shown(sort: str) -> list[str]:
        html = text(staff.get("/admin/products/", query_string={"q": "bean", "sort": sort}))
        assert "Lentils" not in html
        return names_in(html, names)

    assert shown("name") == ["Bean A", "Bean B", "Bean C"]
    assert shown("-name") == ["Bean C", "Bean B", "Bean A"]
    assert shown("price") == ["Bean C", "Bean B", "Bean A"]
    assert shown("-price") == ["Bean A", "Bean B", "Bean C"]
    assert shown("stock") == ["Bean B", "Bean C", "Bean A"]
    assert shown("-stock") == ["Bean A", "Bean C", "Bean B"]


def test_the_product_list_pages_by_25(staff: FlaskClient, uow: Any) -> None:
    for i in range(27):
        f.product(uow, name=f"Item {i:02d}")
    first = text(staff.get("/admin/products/?sort=name"))
    assert "Item 24" in first
    assert "Item 25" not in first
    assert "Page 1 of 2 · 27 in all" in first
    second = text(staff.get("/admin/products/?sort=name&page=2"))
    assert "Item 25" in second
    assert "Item 26" in second
    assert "Item 24" not in second


# --- orders -----------------------------------------------------------------------------------


@pytest.fixture
def two_customers_orders(client: FlaskClient, container: Container, uow: Any) -> dict[str, Any]:
    oats = f.product(uow, name="Oats", price="2.50", stock=20)
    rice = f.product(uow, name="Rice", price="4.00", stock=20)
    ann = f.user(container, username="ann")
    bob = f.user(container, username="bob")
    first = place_order(client, ann.username, (oats.id, 2), (rice.id, 1))
    second = place_order(client, bob.username, (oats.id, 1))
    third = place_order(client, ann.username, (rice.id, 3))
    return {"oats": oats, "rice": rice, "orders": [first, second, third]}


def test_the_orders_list_shows_every_customers_orders_newest_first(
    staff: FlaskClient, two_customers_orders: dict[str, Any]
) -> None:
    first, second, third = two_customers_orders["orders"]
    html = text(staff.get("/admin/orders/"))
    labels = [f"#{o['id']}<" for o in (first, second, third)]
    assert names_in(html, labels) == [labels[2], labels[1], labels[0]]
    assert "9.00 EUR" in html  # first order's total: 2 x 2.50 + 4.00


def test_the_orders_list_filters_by_customer_and_status(
    staff: FlaskClient, two_customers_orders: dict[str, Any]
) -> None:
    first, second, third = two_customers_orders["orders"]
    post(staff, f"/admin/orders/{first['id']}/cancel/")
    anns = text(staff.get("/admin/orders/?customer=ann"))
    assert f"#{first['id']}<" in anns
    assert f"#{third['id']}<" in anns
    assert f"#{second['id']}<" not in anns
    placed = text(staff.get("/admin/orders/?customer=ann&status=placed"))
    assert f"#{third['id']}<" in placed
    assert f"#{first['id']}<" not in placed
    assert "No orders for" in text(staff.get("/admin/orders/?customer=nobody"))


def test_an_order_page_shows_its_lines_customer_and_total(
    staff: FlaskClient, two_customers_orders: dict[str, Any]
) -> None:
    first = two_customers_orders["orders"][0]
    html = text(staff.get(f"/admin/orders/{first['id']}/"))
    assert "Oats" in html
    assert "Rice" in html
    assert ">ann<" in html
    assert '<th class="num" id="total">9.00 EUR</th>' in html
    assert "Cancel order and restock" in html


def test_staff_cancel_a_placed_order_and_its_units_go_back_to_stock(
    staff: FlaskClient, two_customers_orders: dict[str, Any]
) -> None:
    first = two_customers_orders["orders"][0]
    oats, rice = two_customers_orders["oats"], two_customers_orders["rice"]
    assert staff.get(f"/api/v1/products/{oats.id}/").get_json()["quantity_in_stock"] == 17
    response = post(staff, f"/admin/orders/{first['id']}/cancel/")
    assert "cancelled; its units are back in stock" in text(response)
    assert "Cancel order and restock" not in text(response)
    assert staff.get(f"/api/v1/products/{oats.id}/").get_json()["quantity_in_stock"] == 19
    assert staff.get(f"/api/v1/products/{rice.id}/").get_json()["quantity_in_stock"] == 17
    again = post(staff, f"/admin/orders/{first['id']}/cancel/")
    assert "only a placed order can be cancelled" in text(again)
    assert staff.get(f"/api/v1/products/{oats.id}/").get_json()["quantity_in_stock"] == 19


def test_staff_ship_then_deliver_an_order_from_its_page(
    staff: FlaskClient, container: Container, two_customers_orders: dict[str, Any]
) -> None:
    first = two_customers_orders["orders"][0]
    oats = two_customers_orders["oats"]
    page = f"/admin/orders/{first['id']}/"
    assert "Mark as shipped" in text(staff.get(page))
    shipped = text(post(staff, f"{page}ship/"))
    assert f"Order {first['id']} shipped." in shipped
    assert '<span class="badge badge-shipped" id="status">shipped</span>' in shipped
    assert "Mark as delivered" in shipped
    assert "Cancel order and restock" not in shipped  # a shipped order cannot be cancelled
    refused = text(post(staff, f"{page}cancel/"))
    assert "only a placed order can be cancelled" in refused
    delivered = text(post(staff, f"{page}deliver/"))
    assert f"Order {first['id']} delivered." in delivered
    assert "Delivered " in delivered
    assert "Mark as" not in delivered
    again = text(post(staff, f"{page}ship/"))
    assert "it cannot become shipped" in again
    assert staff.get(f"/api/v1/products/{oats.id}/").get_json()["quantity_in_stock"] == 17
    as_staff = f.bearer(staff, f.user(container, staff=True).username)
    api = staff.get(f"/api/v1/staff/orders/{first['id']}/", headers=as_staff).get_json()
    assert api["status"] == "delivered"


def test_an_order_page_shows_each_lines_vat_and_the_orders_totals(
    staff: FlaskClient, container: Container, client: FlaskClient
) -> None:
    made = staff.post(
        "/api/v1/products/",
        json={
            "name": "Cocoa",
            "price": "12.50",
            "sku": "CCO-5",
            "vat_rate": "7.00",
            "unit": "bag",
            "quantity_in_stock": 10,
        },
        headers=f.bearer(staff, f.user(container, staff=True).username),
    ).get_json()
    order = place_order(client, f.user(container).username, (made["id"], 3))
    html = text(staff.get(f"/admin/orders/{order['id']}/"))
    assert "CCO-5" in html
    assert "12.50 / bag" in html
    assert '<th class="num" id="subtotal">37.50</th>' in html
    assert '<th class="num" id="vat-total">2.63</th>' in html
    assert '<th class="num" id="total">40.13 EUR</th>' in html


def test_an_unknown_action_on_an_order_is_a_404(
    staff: FlaskClient, two_customers_orders: dict[str, Any]
) -> None:
    first = two_customers_orders["orders"][0]
    assert post(staff, f"/admin/orders/{first['id']}/refund/").status_code == 404


def test_an_unknown_order_is_a_404_page(staff: FlaskClient) -> None:
    response = staff.get("/admin/orders/424242/")
    assert response.status_code == 404
    assert "Order 424242 does not exist" in text(response)


def test_the_orders_list_does_not_query_per_order(
    staff: FlaskClient, two_customers_orders: dict[str, Any], database: Database
) -> None:
    with count_statements(database.engine) as few:
        staff.get("/admin/orders/")
    oats = two_customers_orders["oats"]
    for _ in range(4):
        place_order(staff, "bob", (oats.id, 1))
    with count_statements(database.engine) as more:
        staff.get("/admin/orders/")
    assert more.count == few.count


# --- users ------------------------------------------------------------------------------------


def test_the_users_list_shows_roles_and_searches(staff: FlaskClient, container: Container) -> None:
    f.user(container, username="carol")
    f.user(container, username="carlos", staff=True)
    f.user(container, username="dave")
    html = text(staff.get("/admin/users/?q=car"))
    assert names_in(html, [">carlos<", ">carol<"]) == [">carlos<", ">carol<"]
    assert "dave" not in html
    assert "staff" in html
    assert "customer" in html


def test_staff_create_a_customer_who_can_log_in_to_the_api(staff: FlaskClient) -> None:
    response = post(
        staff, "/admin/users/new/", {"username": "erin", "password": "a-fine-new-password"}
    )
    assert "Customer &#39;erin&#39; created." in text(response)
    assert response.request.path == "/admin/users/erin/"
    assert f.login(staff, "erin", "a-fine-new-password")["access"]


def test_staff_create_another_staff_user_who_can_log_in_to_the_admin(
    staff: FlaskClient, app: Any
) -> None:
    response = post(
        staff,
        "/admin/users/new/",
        {"username": "frank", "password": "a-fine-new-password", "is_staff": "on"},
    )
    assert "Staff user &#39;frank&#39; created." in text(response)
    assert admin_login(app.test_client(), "frank", "a-fine-new-password").status_code == 303


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "gina", "password": "short"}, "at least 8 characters"),
        ({"username": "gina", "password": "password123"}, "too common"),
        ({"username": "not valid!", "password": "a-fine-new-password"}, "Username must be"),
    ],
)
def test_a_user_form_with_bad_values_says_why_and_creates_nothing(
    staff: FlaskClient, form: dict[str, str], message: str
) -> None:
    response = post(staff, "/admin/users/new/", form)
    assert response.status_code == 422
    assert message in text(response)
    assert "No users match" in text(staff.get("/admin/users/?q=gina"))


def test_a_taken_username_is_a_message(staff: FlaskClient, container: Container) -> None:
    f.user(container, username="hana")
    response = post(staff, "/admin/users/new/", {"username": "hana", "password": "another-pass-1"})
    assert response.status_code == 422
    assert "is taken" in text(response)


def test_after_a_password_reset_the_new_password_logs_in_to_the_api(
    staff: FlaskClient, container: Container
) -> None:
    customer = f.user(container, username="ivan")
    response = post(
        staff, f"/admin/users/{customer.username}/password/", {"password": "fresh-pass-42"}
    )
    assert "Password of &#39;ivan&#39; changed." in text(response)
    assert f.login(staff, "ivan", "fresh-pass-42")["access"]
    old = staff.post("/api/token/", json={"username": "ivan", "password": f.PASSWORD})
    assert old.status_code == 401


def test_a_weak_reset_password_is_refused_with_a_message(
    staff: FlaskClient, container: Container
) -> None:
    customer = f.user(container, username="jo")
    response = post(staff, f"/admin/users/{customer.username}/password/", {"password": "123"})
    assert "at least 8 characters" in text(response)
    assert f.login(staff, "jo")["access"]  # the old password still works


def test_a_deactivated_user_cannot_log_in_to_the_api_or_the_admin(
    staff: FlaskClient, container: Container, app: Any
) -> None:
    customer = f.user(container, username="kim")
    other_staff = f.user(container, username="lee", staff=True)
    for user in (customer, other_staff):
        response = post(staff, f"/admin/users/{user.username}/active/", {"active": "0"})
        assert f"&#39;{user.username}&#39; deactivated." in text(response)
        api = staff.post("/api/token/", json={"username": user.username, "password": f.PASSWORD})
        assert api.status_code == 401
    assert admin_login(app.test_client(), "lee").status_code == 401

    post(staff, "/admin/users/kim/active/", {"active": "1"})
    assert f.login(staff, "kim")["access"]


def test_staff_cannot_deactivate_themselves(client: FlaskClient, container: Container) -> None:
    me = f.user(container, username="self", staff=True)
    admin_login(client, me.username)
    response = post(client, "/admin/users/self/active/", {"active": "0"})
    assert "cannot deactivate your own account" in text(response)
    assert client.get("/admin/users/").status_code == 200


def test_an_unknown_user_is_a_404_page(staff: FlaskClient) -> None:
    response = staff.get("/admin/users/nobody/")
    assert response.status_code == 404
    assert "does not exist" in text(response)


# --- v1.2: where an order goes, its invoice, cases and minimums ----------------------------------


def test_an_order_page_shows_where_it_goes_and_links_its_invoice_once_shipped(
    staff: FlaskClient, container: Container, uow: Any
) -> None:
    customer = f.user(container)
    headers = f.bearer(staff, customer.username)
    address = {
        "recipient": "Jane Baker",
        "company": "Kaffee & Co",
        "line1": "12 Mill Lane",
        "postal_code": "EC1A 1BB",
        "city": "London",
        "country": "GB",
    }
    assert staff.post("/api/v1/me/addresses/", json=address, headers=headers).status_code == 201
    product = f.product(uow, name="Crème fraîche")
    order = place_order(staff, customer.username, (product.id, 1))
    page = f"/admin/orders/{order['id']}/"
    html = text(staff.get(page))
    assert "Jane Baker" in html
    assert "Kaffee &amp; Co" in html
    assert "No invoice until it ships." in html
    assert staff.get(f"/admin/orders/{order['id']}/invoice.pdf").status_code == 409
    shipped = text(post(staff, f"{page}ship/"))
    number = re.search(r"INV-\d{4}-\d{6}", shipped)
    assert number, shipped
    assert f'href="/admin/orders/{order["id"]}/invoice.pdf"' in shipped
    pdf = staff.get(f"/admin/orders/{order['id']}/invoice.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    as_staff = f.bearer(staff, f.user(container, staff=True).username)
    api = staff.get(f"/api/v1/staff/orders/{order['id']}/invoice/", headers=as_staff)
    assert pdf.get_data() == api.get_data()


def test_an_order_placed_with_an_empty_address_book_says_so(
    staff: FlaskClient, container: Container, uow: Any
) -> None:
    customer = f.user(container)
    order = place_order(staff, customer.username, (f.product(uow).id, 1))
    html = text(staff.get(f"/admin/orders/{order['id']}/"))
    assert "No delivery address" in html


def test_the_product_forms_set_the_minimum_and_the_case_size(staff: FlaskClient) -> None:
    form = text(staff.get("/admin/products/new/"))
    assert 'name="min_order_quantity"' in form
    assert 'name="case_size"' in form
    made = post(
        staff,
        "/admin/products/new/",
        {"name": "Oat milk 1L", "price": "1.80", "min_order_quantity": "12", "case_size": "6"},
    )
    assert made.status_code == 200
    [product] = api_products(staff, "Oat milk")
    assert (product["min_order_quantity"], product["case_size"]) == (12, 6)
    refused = post(
        staff,
        f"/admin/products/{product['id']}/",
        {"name": "Oat milk 1L", "price": "1.80", "min_order_quantity": "7", "case_size": "6"},
    )
    assert "must be a multiple of the case size" in text(refused)
    assert api_products(staff, "Oat milk")[0]["min_order_quantity"] == 12
