"""The staff admin site at ``/admin/``: server-rendered Jinja pages over the use cases.

Why our own pages and not Flask-Admin: Flask-Admin's model views (``flask_admin.contrib.sqla``)
read and write tables through the ORM session directly. Here every write must go through the
application's use cases, so that the stock rules of ``Product``, the row locks of
``RestockProduct`` and the restocking of ``Order.cancel`` hold in the admin exactly as in the
API. Bending Flask-Admin to that means overriding every create, update and delete hook of every
view and still carrying its ORM and WTForms machinery (plus its bundled front-end assets) for
pages it no longer drives. A small Blueprint that parses a form, calls one use case and renders
a template is less code, keeps the hexagonal layers intact (the admin imports no adapter), and
needs no new dependency.

Security: Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS and always in
production), scoped to ``/admin`` so the JSON API never sees it; a CSRF token kept in the session
and compared in constant time on every POST of this blueprint only (the API stays token-based
and CSRF-free); staff-only login through the application's own password check; and on every
request the session's user is re-read and must still be active staff. The admin registers as a
plain Flask blueprint, not with flask-smorest, so it is absent from the OpenAPI document.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from opply.entrypoints.config import Settings

SESSION_LIFETIME = timedelta(hours=12)


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_admin(app: Flask) -> None:
    """Mount the admin blueprint at ``/admin/`` and configure the session cookie it uses."""
    from opply.entrypoints.admin import views

    settings: Settings = app.config["OPPLY_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="opply_admin",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = AdminSessionInterface()
    app.extensions["container"].wire(modules=[views])
    app.register_blueprint(views.bp)
