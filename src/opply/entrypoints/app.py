"""The Flask application factory."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import flask
from dependency_injector.wiring import unwire
from flask import Flask
from werkzeug.datastructures import ImmutableMultiDict

from opply.entrypoints.admin import init_admin
from opply.entrypoints.api import init_api
from opply.entrypoints.api.problems import register_error_handlers
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container, build_container
from opply.entrypoints.limits import init_limits
from opply.entrypoints.observability import init_observability

MAX_BODY_BYTES = 1024 * 1024


def wired_modules() -> list[ModuleType]:
    """The modules whose ``Provide`` markers the container fills when an app is created."""
    from opply.entrypoints.admin import auth as admin_auth
    from opply.entrypoints.admin import dashboard as admin_dashboard
    from opply.entrypoints.admin import orders as admin_orders
    from opply.entrypoints.admin import products as admin_products
    from opply.entrypoints.admin import site as admin_site
    from opply.entrypoints.admin import users as admin_users
    from opply.entrypoints.admin import webhooks as admin_webhooks
    from opply.entrypoints.api import (
        account,
        addresses,
        auth,
        health,
        orders,
        products,
        security,
        staff,
    )
    from opply.entrypoints.api import webhooks as api_webhooks

    return [
        account,
        addresses,
        staff,
        api_webhooks,
        auth,
        health,
        orders,
        products,
        security,
        admin_auth,
        admin_dashboard,
        admin_orders,
        admin_products,
        admin_site,
        admin_webhooks,
        admin_users,
    ]


class QueryParameters(ImmutableMultiDict[str, str]):
    """``request.args`` (and form fields), whose ``get`` of an absent name costs one dict
    lookup. Werkzeug's raises and catches a ``BadRequestKeyError`` for it, and webargs asks for
    every declared parameter of every request: eight exceptions built per product page.
    Lookups of present names, ``getlist`` and everything else are Werkzeug's own."""

    def get(  # type: ignore[override]  # one signature for Werkzeug's overloads
        self,
        key: Any,
        default: Any = None,
        type: Any = None,
    ) -> Any:
        if not dict.__contains__(self, key):
            return default
        return super().get(key, default, type)


class Request(flask.Request):
    """Flask's request, with :class:`QueryParameters` (Werkzeug's documented
    ``parameter_storage_class`` attribute)."""

    parameter_storage_class = QueryParameters


def create_app(settings: Settings | None = None, container: Container | None = None) -> Flask:
    """The service's app. Its views use ``container``'s use cases (one container per process:
    the views' markers are module attributes; ``unwire_app`` gives them back)."""
    settings = settings or Settings.from_env()
    if container is None:
        container = build_container(settings)

    app = Flask(__name__, instance_relative_config=False)
    app.request_class = Request
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        PROPAGATE_EXCEPTIONS=False,
        OPPLY_SETTINGS=settings,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.is_production:
        app.debug = False  # Flask honours FLASK_DEBUG from the environment; production never does
    # Paths keep their trailing slash, and the same path without it is answered too (no
    # redirect: a redirected POST loses its body in some clients).
    app.url_map.strict_slashes = False
    app.extensions["container"] = container
    # First, so its before_request hook (request id, timer) runs before everyone else's.
    init_observability(app, settings)

    # The markers are module attributes: whatever an earlier app (a test's) put there goes
    # back to its marker first, then this container fills them.
    modules = wired_modules()
    unwire(modules=modules)
    container.wire(modules=modules)
    register_error_handlers(app)
    init_api(app)
    init_limits(app, settings)
    # A plain Flask blueprint, not flask-smorest's: the admin stays out of the OpenAPI document.
    init_admin(app)

    logging.getLogger("opply").setLevel(settings.log_level)
    return app


def unwire_app(app: Flask) -> None:
    """Give the view modules their markers back (tests building several apps in one process)."""
    container: Container = app.extensions["container"]
    container.unwire()
