"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask

from opply.entrypoints.admin import init_admin
from opply.entrypoints.api import init_api
from opply.entrypoints.api.problems import register_error_handlers
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container, build_container
from opply.entrypoints.limits import init_limits
from opply.entrypoints.observability import init_observability

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, container: Container | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if container is None:
        container = build_container(settings)

    app = Flask(__name__, instance_relative_config=False)
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

    container.wire(packages=["opply.entrypoints.api"])
    register_error_handlers(app)
    init_api(app)
    init_limits(app, settings)  # after init_api: it wraps the token views
    # A plain Flask blueprint, not flask-smorest's: the admin stays out of the OpenAPI document.
    init_admin(app)

    logging.getLogger("opply").setLevel(settings.log_level)
    return app
