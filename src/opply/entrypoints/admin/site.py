"""The admin blueprint and what every admin page shares: the session guard, CSRF, paging, flashing
a write's outcome, and the error pages (status and title from the one error table)."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from dependency_injector.wiring import Provide
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
from werkzeug.routing import BaseConverter, ValidationError
from werkzeug.wrappers.response import Response as BaseResponse

from opply.application.auth import GetActiveStaff
from opply.application.dto import Page
from opply.application.unit_of_work import StoreUnavailable
from opply.domain import errors as de
from opply.entrypoints.admin.forms import FormError
from opply.entrypoints.api.problems import DATABASE_RETRY_AFTER_SECONDS, DatabaseUnavailable
from opply.entrypoints.api.schemas import UNSAFE_TEXT_MESSAGE, unsafe_text
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

get_active_staff: GetActiveStaff = Provide[Container.get_active_staff]


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
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), sent.encode("utf-8", "replace")
    ):
        abort(400, description="The form has expired or did not come from this site. Reload it.")


def safe_next(target: str | None) -> str:
    """Only a path inside the admin: never an open redirect to another site."""
    if (
        target
        and target.startswith("/admin/")
        and not target.startswith("//")
        and not any(c in target for c in "\\\r\n")
    ):
        return target
    return url_for("admin.index")


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
        g.staff = get_active_staff(user_id)
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


def text_arg(name: str) -> str | None:
    """A filter typed into a search box (trimmed; None when empty). Text the database cannot
    take is refused with a 422 page that says so."""
    value = request.args.get(name, "").strip()
    if unsafe_text(value):
        abort(422, description=f"{name}: {UNSAFE_TEXT_MESSAGE}")
    return value or None


class PlainText(BaseConverter):
    """A path segment of text the database can take (a username); anything else matches no
    page (404), since no such record can exist."""

    def to_python(self, value: str) -> str:
        if unsafe_text(value):
            raise ValidationError()
        return value


def page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def pager(found: Page[Any], page: int, endpoint: str, **params: Any) -> dict[str, Any]:
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


def act(action: Callable[[], Any], done: str, back: str) -> BaseResponse:
    """Run one write; show its success, or why it was refused, on the page we go back to."""
    try:
        action()
    except (de.DomainError, FormError) as error:
        flash(error.detail, "error")
    else:
        flash(done, "success")
    return redirect(back, 303)


@bp.errorhandler(de.DomainError)
def _domain_error(error: de.DomainError) -> Any:
    page = render_template(
        "admin/error.html", status=error.status, title=error.title, message=error.detail
    )
    return page, error.status


@bp.errorhandler(StoreUnavailable)
def _store_unavailable(error: StoreUnavailable) -> Any:
    log.warning("database unavailable on %s %s: %r", request.method, request.path, error.__cause__)
    page = render_template(
        "admin/error.html",
        status=DatabaseUnavailable.status,
        title=DatabaseUnavailable.title,
        message="The database cannot be reached right now; try again in a moment.",
    )
    return page, DatabaseUnavailable.status, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    page = render_template(
        "admin/error.html", status=status, title=error.name, message=error.description
    )
    return page, status


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    message = "Something went wrong on our side; it has been logged."
    page = render_template(
        "admin/error.html", status=500, title="Internal server error", message=message
    )
    return page, 500
