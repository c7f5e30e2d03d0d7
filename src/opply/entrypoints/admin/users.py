"""Admin user pages: list, create, reset a password, deactivate or reactivate."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from dependency_injector.wiring import Provide
from flask import flash, g, redirect, render_template, request, url_for
from marshmallow import validate

from opply.application.dto import NewUser, PageRequest, UserFilter
from opply.application.passwords import MAX_PASSWORD_LENGTH
from opply.application.users import (
    MAX_USERNAME_LENGTH,
    CreateUser,
    GetUser,
    ListUsers,
    SetPassword,
    SetUserActive,
)
from opply.domain import errors as de
from opply.entrypoints.admin import forms
from opply.entrypoints.admin.site import PAGE_SIZE, act, bp, page_number, pager, text_arg
from opply.entrypoints.api.schemas import InputSchema
from opply.entrypoints.container import Container

list_users: ListUsers = Provide[Container.list_users]
get_user: GetUser = Provide[Container.get_user]
create_user: CreateUser = Provide[Container.create_user]
set_password: SetPassword = Provide[Container.set_password]
set_user_active: SetUserActive = Provide[Container.set_user_active]


class PasswordForm(InputSchema):
    # The password rules themselves (length, common passwords) are the use case's.
    password = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
    )


class NewUserForm(PasswordForm):
    username = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_USERNAME_LENGTH)
    )
    is_staff = ma.fields.Boolean(load_default=False)


class ActiveForm(InputSchema):
    active = ma.fields.Boolean(required=True)


NEW_USER = NewUserForm()
PASSWORD = PasswordForm()
ACTIVE = ActiveForm()


@bp.route("/users/")
def users() -> Any:
    search = text_arg("q")
    page = page_number()
    found = list_users(UserFilter(search=search), PageRequest(page=page, page_size=PAGE_SIZE))
    return render_template(
        "admin/users.html",
        users=found.items,
        search=search or "",
        pager=pager(found, page, "admin.users", q=search),
    )


@bp.route("/users/new/", methods=["GET", "POST"])
def user_new() -> Any:
    form: dict[str, Any] = {"username": "", "is_staff": False}
    if request.method == "POST":
        form = {
            "username": request.form.get("username", "").strip(),
            "is_staff": request.form.get("is_staff") == "on",
        }
        try:
            user = create_user(NewUser(**forms.parse(NEW_USER, request.form)))
        except (de.DomainError, forms.FormError) as error:
            flash(error.detail, "error")
            return render_template("admin/user_form.html", form=form), 422
        kind = "Staff user" if user.is_staff else "Customer"
        flash(f"{kind} {user.username!r} created.", "success")
        return redirect(url_for("admin.user_detail", username=user.username), 303)
    return render_template("admin/user_form.html", form=form)


@bp.route("/users/<plain:username>/")
def user_detail(username: str) -> Any:
    return render_template("admin/user_detail.html", user=get_user(username))


@bp.route("/users/<plain:username>/password/", methods=["POST"])
def user_password(username: str) -> Any:
    return act(
        lambda: set_password(username, forms.parse(PASSWORD, request.form)["password"]),
        f"Password of {username!r} changed.",
        url_for("admin.user_detail", username=username),
    )


@bp.route("/users/<plain:username>/active/", methods=["POST"])
def user_active(username: str) -> Any:
    active = forms.parse(ACTIVE, request.form)["active"]
    return act(
        lambda: set_user_active(username, active, acting_username=g.staff.username),
        f"{username!r} {'reactivated' if active else 'deactivated'}.",
        url_for("admin.user_detail", username=username),
    )
