"""The HTTP API: flask-smorest blueprints, problem+json errors, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from opply.entrypoints.api.operations import ProblemResponsesPlugin
from opply.entrypoints.api.problems import ProblemSchema, http_problem
from opply.entrypoints.api.schemas import Money


class OpplyApi(Api):
    """flask-smorest's Api, speaking RFC 9457 problem details instead of its own error shape."""

    # No catch-all "default": every operation names its errors (see api/operations.py).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: Any) -> Any:
        return http_problem(error)


API_DESCRIPTION = """
The Opply ordering API for the mobile app.

* Log in with `POST /api/token/`, then send `Authorization: Bearer <access>`.
* Money is a decimal string with two places; timestamps are ISO 8601 in UTC.
* Every error is `application/problem+json` with a stable `code` to switch on.
* Lists are paged: `page` (from 1) and `page_size` (1 to 100).
"""


def init_api(app: Flask) -> OpplyApi:
    from opply.entrypoints.api import account, auth, docs, health, orders, products, staff

    app.config.update(
        API_TITLE="Opply API",
        API_VERSION="1.1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs/",
        OPENAPI_SWAGGER_UI_URL=docs.SWAGGER_UI_STATIC_URL,
        OPENAPI_SWAGGER_UI_CONFIG={"persistAuthorization": True, "displayRequestDuration": True},
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION.strip()},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
    )
    api = OpplyApi(spec_kwargs={"extra_plugins": [ProblemResponsesPlugin()]})
    api.init_app(app)
    api.register_field(Money, "string", None)
    api.spec.components.schema("Problem", schema=ProblemSchema)
    for blueprint in (health.blp, auth.blp, account.blp, products.blp, orders.blp, staff.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.docs_assets)
    return api
