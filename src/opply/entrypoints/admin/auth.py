"""Admin log in and out, and the home page."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from dependency_injector.wiring import Provide
from flask import flash, redirect, render_template, request, session, url_for

from opply.application.auth import AuthenticateStaff
from opply.application.dto import PageRequest, ProductFilter, UserFilter
from opply.application.orders import ListAllOrders
from opply.application.products import ListProducts
from opply.application.users import ListUsers
from opply.domain import errors as de
from opply.domain.model import OrderStatus
from opply.entrypoints.admin import forms
from opply.entrypoints.admin.site import SESSION_USER, bp, csrf_token, safe_next
from opply.entrypoints.api.schemas import InputSchema
from opply.entrypoints.container import Container

authenticate_staff: AuthenticateStaff = Provide[Container.authenticate_staff]


class LoginForm(InputSchema):
    username = ma.fields.String(required=True)
    password = ma.fields.String(required=True)


LOGIN = LoginForm()
list_products: ListProducts = Provide[Container.list_products]
list_all_orders: ListAllOrders = Provide[Container.list_all_orders]
list_users: ListUsers = Provide[Container.list_users]


@bp.route("/login/", methods=["GET", "POST"])
def login() -> Any:
    next_url = request.values.get("next")
    if request.method == "GET":
        if isinstance(session.get(SESSION_USER), int):
            return redirect(safe_next(next_url))
        return render_template("admin/login.html", next_url=next_url or "")
    username = request.form.get("username", "").strip()
    try:
        typed = forms.parse(LOGIN, {**request.form, "username": username}, keep_blank=True)
        user = authenticate_staff(typed["username"], typed["password"])
    except (de.AuthenticationFailed, forms.FormError):
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
    return redirect(safe_next(next_url), 303)


@bp.route("/logout/", methods=["POST"])
def logout() -> Any:
    session.clear()
    flash("You are logged out.", "success")
    return redirect(url_for("admin.login"), 303)


@bp.route("/")
def index() -> Any:
    one = PageRequest(page=1, page_size=1)
    all_products = list_products(ProductFilter(), one).total
    counts = {
        "products": all_products,
        "out_of_stock": all_products - list_products(ProductFilter(in_stock=True), one).total,
        "placed_orders": list_all_orders(None, OrderStatus.PLACED, one).total,
        "users": list_users(UserFilter(), one).total,
    }
    return render_template("admin/index.html", counts=counts)
