"""Admin pages: each view parses a form or query, calls one use case and renders a template.

Domain errors (a weak password, a bad price, a cancelled order) come back to the page as
messages, never as a 500. Writes answer with a redirect (303) so a reload never repeats them.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from dependency_injector.wiring import Provide, inject
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as BaseResponse

from opply.application.auth import AuthenticateStaff, GetActiveStaff
from opply.application.dto import PageRequest, UserView
from opply.application.orders import CancelOrderAsStaff, GetOrderAsStaff, ListAllOrders
from opply.application.ports import Page, ProductFilter, ProductSort, UserFilter
from opply.application.products import (
    CreateProduct,
    GetProduct,
    ListProducts,
    NewProduct,
    ProductChanges,
    RestockProduct,
    UpdateProduct,
)
from opply.application.users import (
    CreateUser,
    GetUser,
    ListUsers,
    NewUser,
    SetPassword,
    SetUserActive,
)
from opply.domain import errors as de
from opply.domain.model import OrderStatus
from opply.entrypoints.api.problems import DOMAIN_STATUS
from opply.entrypoints.container import Container

log = logging.getLogger("opply.admin")

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE = 25
SESSION_USER = "staff_id"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# --- session, login and CSRF ---------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the login form needs one too)."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def _check_csrf() -> None:
    expected = session.get(SESSION_CSRF)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="The form has expired or did not come from this site. Reload it.")


def _safe_next(target: str | None) -> str:
    """Only a path inside the admin: never an open redirect to another site."""
    if (
        target
        and target.startswith("/admin/")
        and not target.startswith("//")
        and not any(c in target for c in "\\\r\n")
    ):
        return target
    return url_for("admin.index")


@inject
def _current_staff(
    user_id: int, get_staff: GetActiveStaff = Provide[Container.get_active_staff]
) -> UserView:
    return get_staff(user_id)


@bp.before_request
def _guard() -> BaseResponse | None:
    if request.method == "POST":
        _check_csrf()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user_id = session.get(SESSION_USER)
    if not isinstance(user_id, int):
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    try:
        g.staff = _current_staff(user_id)
    except de.NotAuthenticated:
        session.clear()
        flash("Your session has ended: the account is no longer active staff.", "error")
        return redirect(url_for("admin.login"))
    return None


@bp.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    settings = current_app.config["OPPLY_SETTINGS"]
    return {
        "csrf_token": csrf_token,
        "csrf_field": CSRF_FIELD,
        "staff": g.get("staff"),
        "currency": settings.currency,
    }


@bp.app_template_filter("admin_datetime")
def _format_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@bp.route("/login/", methods=["GET", "POST"])
@inject
def login(
    authenticate: AuthenticateStaff = Provide[Container.authenticate_staff],
) -> Any:
    next_url = request.values.get("next")
    if request.method == "GET":
        if isinstance(session.get(SESSION_USER), int):
            return redirect(_safe_next(next_url))
        return render_template("admin/login.html", next_url=next_url or "")
    username = request.form.get("username", "").strip()
    try:
        user = authenticate(username, request.form.get("password", ""))
    except de.AuthenticationFailed:
        flash("Wrong username or password, or the account is deactivated.", "error")
        return render_template("admin/login.html", next_url=next_url, username=username), 401
    except de.PermissionDenied:
        flash("This account is not staff: the admin site is for staff only.", "error")
        return render_template("admin/login.html", next_url=next_url, username=username), 403
    # A fresh session at login: nothing from before it (including its CSRF token) carries over.
    session.clear()
    session.permanent = True
    session[SESSION_USER] = user.id
    csrf_token()
    flash(f"Welcome, {user.username}.", "success")
    return redirect(_safe_next(next_url), 303)


@bp.route("/logout/", methods=["POST"])
def logout() -> Any:
    session.clear()
    flash("You are logged out.", "success")
    return redirect(url_for("admin.login"), 303)


# --- helpers ---------------------------------------------------------------------------------


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def _pager(found: Page[Any], page: int, endpoint: str, **params: Any) -> dict[str, Any]:
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    kept = {k: v for k, v in params.items() if v not in (None, "")}

    def link(number: int) -> str:
        return url_for(endpoint) + "?" + urlencode({**kept, "page": number})

    return {
        "page": page,
        "pages": pages,
        "total": found.total,
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
    }


def _decimal(raw: str, what: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise de.InvalidPrice(f"{what} must be a number such as 12.50, got {raw!r}") from None
    if not value.is_finite():
        raise de.InvalidPrice(f"{what} must be a number such as 12.50, got {raw!r}")
    return value


def _integer(raw: str, what: str) -> int:
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > 12:
        raise de.InvalidQuantity(f"{what} must be a whole number, got {raw!r}")
    return int(text)


def _act(action: Callable[[], Any], done: str, back: str) -> BaseResponse:
    """Run one write; show its success or its domain error on the page we go back to."""
    try:
        action()
    except de.DomainError as error:
        flash(error.detail, "error")
    else:
        flash(done, "success")
    return redirect(back, 303)


# --- home ------------------------------------------------------------------------------------


@bp.route("/")
@inject
def index(
    list_products: ListProducts = Provide[Container.list_products],
    list_orders: ListAllOrders = Provide[Container.list_all_orders],
    list_users: ListUsers = Provide[Container.list_users],
) -> Any:
    one = PageRequest(1, 1)
    all_products = list_products(ProductFilter(), one).total
    counts = {
        "products": all_products,
        "out_of_stock": all_products - list_products(ProductFilter(in_stock=True), one).total,
        "placed_orders": list_orders(None, OrderStatus.PLACED, one).total,
        "users": list_users(UserFilter(), one).total,
    }
    return render_template("admin/index.html", counts=counts)


# --- products --------------------------------------------------------------------------------

PRODUCT_SORTS = {s.value for s in ProductSort}


@bp.route("/products/")
@inject
def products(list_products: ListProducts = Provide[Container.list_products]) -> Any:
    search = request.args.get("q", "").strip() or None
    sort_raw = request.args.get("sort", "name")
    sort = ProductSort(sort_raw) if sort_raw in PRODUCT_SORTS else ProductSort.NAME
    page = _page_number()
    found = list_products(ProductFilter(search=search, sort=sort), PageRequest(page, PAGE_SIZE))
    return render_template(
        "admin/products.html",
        products=found.items,
        search=search or "",
        sort=sort.value,
        pager=_pager(found, page, "admin.products", q=search, sort=sort.value),
    )


@bp.route("/products/new/", methods=["GET", "POST"])
@inject
def product_new(create: CreateProduct = Provide[Container.create_product]) -> Any:
    form = {"name": "", "price": "", "quantity_in_stock": "0"}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            product = create(
                NewProduct(
                    form["name"],
                    _decimal(form["price"], "Price"),
                    _integer(form["quantity_in_stock"] or "0", "Stock"),
                )
            )
        except de.DomainError as error:
            flash(error.detail, "error")
            return render_template("admin/product_form.html", form=form, product=None), 422
        flash(f"Product {product.name!r} created.", "success")
        return redirect(url_for("admin.product_edit", product_id=product.id), 303)
    return render_template("admin/product_form.html", form=form, product=None)


@bp.route("/products/<int:product_id>/", methods=["GET", "POST"])
@inject
def product_edit(
    product_id: int,
    get_product: GetProduct = Provide[Container.get_product],
    update: UpdateProduct = Provide[Container.update_product],
) -> Any:
    product = get_product(product_id)
    form = {"name": product.name, "price": str(product.price)}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            update(
                product_id,
                ProductChanges(name=form["name"], price=_decimal(form["price"], "Price")),
            )
        except de.DomainError as error:
            flash(error.detail, "error")
            page = render_template("admin/product_form.html", form=form, product=product)
            return page, 422
        flash("Product saved.", "success")
        return redirect(url_for("admin.product_edit", product_id=product_id), 303)
    return render_template("admin/product_form.html", form=form, product=product)


@bp.route("/products/<int:product_id>/restock/", methods=["POST"])
@inject
def product_restock(
    product_id: int, restock: RestockProduct = Provide[Container.restock_product]
) -> Any:
    raw = request.form.get("quantity", "")
    back = _safe_next(request.form.get("next")) if request.form.get("next") else None
    return _act(
        lambda: restock(product_id, _integer(raw, "Restock quantity")),
        f"Added {raw.strip()} to stock.",
        back or url_for("admin.product_edit", product_id=product_id),
    )


# --- orders ----------------------------------------------------------------------------------

STATUSES = [s.value for s in OrderStatus]


@bp.route("/orders/")
@inject
def orders(list_orders: ListAllOrders = Provide[Container.list_all_orders]) -> Any:
    customer = request.args.get("customer", "").strip() or None
    status_raw = request.args.get("status", "")
    status = OrderStatus(status_raw) if status_raw in STATUSES else None
    page = _page_number()
    found = list_orders(customer, status, PageRequest(page, PAGE_SIZE))
    return render_template(
        "admin/orders.html",
        orders=found.items,
        customer=customer or "",
        status=status.value if status else "",
        statuses=STATUSES,
        pager=_pager(
            found, page, "admin.orders", customer=customer, status=status and status.value
        ),
    )


@bp.route("/orders/<int:order_id>/")
@inject
def order_detail(
    order_id: int, get_order: GetOrderAsStaff = Provide[Container.get_order_as_staff]
) -> Any:
    return render_template("admin/order_detail.html", item=get_order(order_id))


@bp.route("/orders/<int:order_id>/cancel/", methods=["POST"])
@inject
def order_cancel(
    order_id: int, cancel: CancelOrderAsStaff = Provide[Container.cancel_order_as_staff]
) -> Any:
    return _act(
        lambda: cancel(order_id),
        f"Order {order_id} cancelled; its units are back in stock.",
        url_for("admin.order_detail", order_id=order_id),
    )


# --- users -----------------------------------------------------------------------------------


@bp.route("/users/")
@inject
def users(list_users: ListUsers = Provide[Container.list_users]) -> Any:
    search = request.args.get("q", "").strip() or None
    page = _page_number()
    found = list_users(UserFilter(search=search), PageRequest(page, PAGE_SIZE))
    return render_template(
        "admin/users.html",
        users=found.items,
        search=search or "",
        pager=_pager(found, page, "admin.users", q=search),
    )


@bp.route("/users/new/", methods=["GET", "POST"])
@inject
def user_new(create: CreateUser = Provide[Container.create_user]) -> Any:
    form: dict[str, Any] = {"username": "", "is_staff": False}
    if request.method == "POST":
        form = {
            "username": request.form.get("username", "").strip(),
            "is_staff": request.form.get("is_staff") == "on",
        }
        try:
            user = create(
                NewUser(form["username"], request.form.get("password", ""), form["is_staff"])
            )
        except de.DomainError as error:
            flash(error.detail, "error")
            return render_template("admin/user_form.html", form=form), 422
        kind = "Staff user" if user.is_staff else "Customer"
        flash(f"{kind} {user.username!r} created.", "success")
        return redirect(url_for("admin.user_detail", username=user.username), 303)
    return render_template("admin/user_form.html", form=form)


@bp.route("/users/<username>/")
@inject
def user_detail(username: str, get_user: GetUser = Provide[Container.get_user]) -> Any:
    return render_template("admin/user_detail.html", user=get_user(username))


@bp.route("/users/<username>/password/", methods=["POST"])
@inject
def user_password(
    username: str, set_password: SetPassword = Provide[Container.set_password]
) -> Any:
    password = request.form.get("password", "")
    return _act(
        lambda: set_password(username, password),
        f"Password of {username!r} changed.",
        url_for("admin.user_detail", username=username),
    )


@bp.route("/users/<username>/active/", methods=["POST"])
@inject
def user_active(
    username: str, set_active: SetUserActive = Provide[Container.set_user_active]
) -> Any:
    active = request.form.get("active") == "1"
    back = url_for("admin.user_detail", username=username)
    return _act(
        lambda: set_active(username, active, acting_username=g.staff.username),
        f"{username!r} {'reactivated' if active else 'deactivated'}.",
        back,
    )


# --- errors ----------------------------------------------------------------------------------


@bp.errorhandler(de.DomainError)
def _domain_error(error: de.DomainError) -> Any:
    status = next((s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls)), 400)
    return render_template("admin/error.html", status=status, message=error.detail), status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    return render_template("admin/error.html", status=status, message=error.description), status


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    message = "Something went wrong on our side; it has been logged."
    return render_template("admin/error.html", status=500, message=message), 500
