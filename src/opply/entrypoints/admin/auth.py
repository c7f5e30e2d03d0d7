"""Admin log in and out."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from dependency_injector.wiring import Provide
from flask import flash, redirect, render_template, request, session, url_for

from opply.application.auth import AuthenticateStaff
from opply.domain import errors as de
from opply.entrypoints.admin import forms
from opply.entrypoints.admin.site import SESSION_USER, bp, csrf_token, safe_next
from opply.entrypoints.api.schemas import InputSchema
from opply.entrypoints.container import Container

authenticate_staff: AuthenticateStaff = Provide[Container.authenticate_staff]


class LoginForm(InputSchema):
    username = ma.fields.String(required=True)
    password = ma.fields.String(required=True)


LOGIN = LoginForm()


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
