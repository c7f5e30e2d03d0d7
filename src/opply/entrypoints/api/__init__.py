"""The HTTP API: flask-smorest blueprints, problem+json errors, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from opply.entrypoints.api.headers import register_headers
from opply.entrypoints.api.operations import ProblemResponsesPlugin
from opply.entrypoints.api.problems import ProblemSchema, http_problem
from opply.entrypoints.api.schemas import Money, WebhookEventSchema


class OpplyApi(Api):
    """flask-smorest's Api, speaking RFC 9457 problem details instead of its own error shape."""

    # No catch-all "default": every operation names its errors (see api/operations.py).
    DEFAULT_ERROR_RESPONSE_NAME = None
    # flask-smorest's (unused) default responses describe errors with this: ours, so its own
    # error schema is not written into the document.
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Any:
        return http_problem(error)

    def _register_pagination_header(self) -> None:
        """Nothing: lists carry their paging in the body (the contract's envelope), and
        flask-smorest's pagination header would write an unused ``PaginationMetadata`` schema
        into every client. (A private hook: tests/integration/test_openapi_document.py fails
        if that schema comes back.)"""


API_DESCRIPTION = """
The Opply ordering API for the mobile app. The guide (conventions, every code, the retry and
token rules) is `docs/api.md` in the project.

* Log in with `POST /api/token/`, then send `Authorization: Bearer <access>`.
* Money is a decimal string with two places; timestamps are ISO 8601 in UTC with `Z`.
* Every error is `application/problem+json` with a stable `code` to switch on; each operation
  lists, per status, exactly the codes it can send. Besides those, any path answers 404
  `not_found` when it does not exist and 405 `method_not_allowed` (with `Allow`) for a method
  it does not have.
* Lists are paged: `page` (from 1) and `page_size` (1 to 100).
* `GET` of products and of an order carry an `ETag`: send it back as `If-None-Match` for a
  bodiless 304 while it is current.
* Webhooks (staff, `/api/v1/staff/webhooks/`): each order event is POSTed to the endpoints
  that want its type as the `WebhookEvent` schema, signed per Standard Webhooks (headers
  `webhook-id`, the event's id and the same on every retry; `webhook-timestamp`;
  `webhook-signature`, `v1,` and base64 of HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with
  the secret's base64-decoded bytes after `whsec_`). Any 2xx is delivered; anything else is
  retried for about a day. Deduplicate on `webhook-id`; keep the newest state by `timestamp`.
"""


def _webhook_header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "example": example},
    }


WEBHOOKS_DOC = {
    "order-event": {
        "post": {
            "operationId": "receiveOrderEvent",
            "summary": "An order event, POSTed to your webhook endpoint",
            "description": "Sent to each active endpoint whose `event_types` has the event's "
            "type, signed per Standard Webhooks with the endpoint's secret. Answer any 2xx "
            "quickly; anything else (or no answer within 15 s) is retried after about 5 s, "
            "5 min, 30 min, 2 h, 5 h, 10 h and 10 h, honouring a `Retry-After`. A 410 disables "
            "the endpoint. At least once, in no promised order: deduplicate on `webhook-id` "
            "and keep the newest state by `timestamp`.",
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                _webhook_header("webhook-id", "The event's id: the same on every retry", "1042"),
                _webhook_header(
                    "webhook-timestamp",
                    "When this attempt was signed, in unix seconds",
                    "1764670500",
                ),
                _webhook_header(
                    "webhook-signature",
                    "`v1,` and base64 of HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}."
                    "{body}`, keyed with the base64-decoded secret after `whsec_`",
                    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}
                },
            },
            "responses": {"200": {"description": "Received (any 2xx is)"}},
        }
    }
}


def init_api(app: Flask) -> OpplyApi:
    from opply.entrypoints.api import (
        account,
        addresses,
        auth,
        docs,
        health,
        orders,
        products,
        staff,
        webhooks,
    )

    app.config.update(
        API_TITLE="Opply API",
        API_VERSION="1.2.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs/",
        OPENAPI_SWAGGER_UI_URL=docs.SWAGGER_UI_STATIC_URL,
        OPENAPI_SWAGGER_UI_CONFIG={"persistAuthorization": True, "displayRequestDuration": True},
        API_SPEC_OPTIONS={
            "info": {
                "description": API_DESCRIPTION.strip(),
                "contact": {"name": "Opply API team", "url": "https://opply.example/api"},
                "license": {"name": "Proprietary", "url": "https://opply.example/terms"},
            },
            # The server that serves this document: generated clients are given their base
            # URL (the deployment's), and paths are absolute from the host.
            "servers": [{"url": "/", "description": "The host this document is served from"}],
            # OpenAPI 3.0 has no `webhooks` (3.1 has): Redoc's `x-webhooks` extension describes
            # what a delivery POSTs to a staff endpoint.
            "x-webhooks": WEBHOOKS_DOC,
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
    register_headers(api.spec)
    for blueprint in (health.blp, auth.blp, account.blp, products.blp, orders.blp, staff.blp):
        api.register_blueprint(blueprint)
    api.register_blueprint(addresses.blp)
    api.register_blueprint(webhooks.blp)
    api.spec.components.schema("WebhookEvent", schema=WebhookEventSchema)
    app.register_blueprint(docs.docs_assets)
    return api
