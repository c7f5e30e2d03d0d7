"""The staff admin site at ``/admin/``: server-rendered Jinja pages over the use cases.

Why our own pages and not Flask-Admin: Flask-Admin's model views (``flask_admin.contrib.sqla``)
read and write tables through the ORM session directly. Here every write must go through the
application's use cases, so that the stock rules of ``Product``, the row locks of
``RestockProduct`` and the restocking of ``Order.cancel`` hold in the admin exactly as in the
API. Bending Flask-Admin to that means overriding every create, update and delete hook of every
view and still carrying its ORM and WTForms machinery (plus its bundled front-end assets) for
pages it no longer drives. A small Blueprint that parses a form (with the API's own marshmallow
schemas), calls one use case and renders a template is less code, keeps the hexagonal layers
intact (the admin imports no adapter), and needs no new dependency.

Security: Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS and always in
production), scoped to ``/admin`` so the JSON API never sees it (nor opens it: the session
interface answers every other path with a null session, at no cost); a CSRF token kept in the
session and compared in constant time on every POST of this blueprint only (the API stays
token-based and CSRF-free); staff-only login through the application's own password check; and
on every request the session's user is re-read and must still be active staff. The admin
registers as a plain Flask blueprint, not with flask-smorest, so it is absent from the OpenAPI
document.

Modules: ``site`` (the blueprint, its session guard, CSRF, helpers and error pages), ``forms``
(form input through marshmallow schemas), and one module per resource: ``auth`` (log in and
out), ``dashboard`` (the home page and the orders export as CSV), ``products``, ``orders``,
``users``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from opply.entrypoints.config import Settings

SESSION_LIFETIME = timedelta(hours=12)
ADMIN_PREFIX = "/admin"


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session for the admin's paths only, marked Secure whenever the
    request came over HTTPS. Anywhere else there is no session to open (the API is stateless)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(ADMIN_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        from flask import request

        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_admin(app: Flask) -> None:
    """Mount the admin blueprint at ``/admin/`` and configure the session cookie it uses."""
    from opply.entrypoints.admin import (  # noqa: F401
        auth,
        dashboard,
        orders,
        products,
        site,
        users,
        webhooks,
    )

    settings: Settings = app.config["OPPLY_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="opply_admin",
        SESSION_COOKIE_PATH=ADMIN_PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = AdminSessionInterface()
    app.url_map.converters["plain"] = site.PlainText
    app.register_blueprint(site.bp)
