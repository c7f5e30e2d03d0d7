"""Staff webhook endpoints: where order events are sent, and how each delivery went."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import PageRequest
from opply.application.webhooks import (
    ChangeWebhookEndpoint,
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    GetWebhookEndpoint,
    ListWebhookDeliveries,
    ListWebhookEndpoints,
    RetryWebhookDelivery,
    RotateWebhookSecret,
)
from opply.domain.errors import (
    DeliveryNotFailed,
    UnsafeWebhookUrl,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    DELIVERY_ID,
    MAX_ID,
    WEBHOOK_ID,
    PageQuerySchema,
    WebhookDeliveryPageSchema,
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPageSchema,
    WebhookEndpointPatchSchema,
    WebhookEndpointSchema,
)
from opply.entrypoints.api.security import staff_only
from opply.entrypoints.container import Container

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/staff/webhooks",
    description="Webhook endpoints and their deliveries, for staff",
)

ENDPOINT_EXAMPLE = {
    "id": 3,
    "url": "https://erp.example.com/hooks/opply",
    "event_types": ["order.placed", "order.shipped"],
    "description": "ERP order sync",
    "secret": "whsec_EXAMPLEexampleEXAMPLEexampleEXAMPLEexample0=",
    "is_active": True,
    "created_at": "2026-12-02T09:00:00Z",
}
DELIVERY_EXAMPLE = {
    "id": 5310,
    "event_id": 1042,
    "event_type": "order.shipped",
    "status": "failed",
    "attempts": 8,
    "last_status_code": 503,
    "last_error": "HTTP 503",
    "next_attempt_at": None,
    "created_at": "2026-12-02T10:15:00Z",
}
ENDPOINT_PATH = f"/<int(min=1, max={MAX_ID}):endpoint_id>/"

create_webhook: CreateWebhookEndpoint = Provide[Container.create_webhook]
list_webhooks: ListWebhookEndpoints = Provide[Container.list_webhooks]
get_webhook: GetWebhookEndpoint = Provide[Container.get_webhook]
change_webhook: ChangeWebhookEndpoint = Provide[Container.change_webhook]
delete_webhook: DeleteWebhookEndpoint = Provide[Container.delete_webhook]
rotate_webhook_secret: RotateWebhookSecret = Provide[Container.rotate_webhook_secret]
list_webhook_deliveries: ListWebhookDeliveries = Provide[Container.list_webhook_deliveries]
retry_webhook_delivery: RetryWebhookDelivery = Provide[Container.retry_webhook_delivery]


@blp.route("/")
class WebhookEndpoints(MethodView):
    @staff_only
    @blp.arguments(PageQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, WebhookEndpointPageSchema)
    @operation("listWebhookEndpoints")
    def get(self, page: int, page_size: int) -> Any:
        """List webhook endpoints, newest first (staff)

        Each with its `secret`: staff may read it at any time, as they may rotate it."""
        req = PageRequest(page=page, page_size=page_size)
        return page_envelope(list_webhooks(req), req, {})

    @staff_only
    @blp.arguments(
        WebhookEndpointCreateSchema,
        example={k: ENDPOINT_EXAMPLE[k] for k in ("url", "event_types", "description")},
    )
    @blp.response(
        201, WebhookEndpointSchema, example=ENDPOINT_EXAMPLE, headers={"Location": "Location"}
    )
    @operation(
        "createWebhookEndpoint",
        UnsafeWebhookUrl,
        links={
            201: {
                target: {"endpoint_id": "$response.body#/id"}
                for target in ("getWebhookEndpoint", "listWebhookDeliveries")
            }
        },
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Create a webhook endpoint (staff)

        Events of the types given that happen from now on are sent to `url`, signed with the
        `secret` in the answer (Standard Webhooks). The URL must be `https://` to a public
        address (the deployment may allow `http://` and private addresses, as development
        does); otherwise a 422 `unsafe_webhook_url`."""
        endpoint = create_webhook(**body)
        return endpoint, 201, {"Location": f"/api/v1/staff/webhooks/{endpoint.id}/"}


@blp.route(ENDPOINT_PATH, parameters=WEBHOOK_ID)
class WebhookEndpoint(MethodView):
    @staff_only
    @blp.response(200, WebhookEndpointSchema, example=ENDPOINT_EXAMPLE)
    @operation("getWebhookEndpoint", WebhookEndpointNotFound)
    def get(self, endpoint_id: int) -> Any:
        """Get a webhook endpoint (staff)

        With its `secret`, which verifies the signature of every delivery to it."""
        return get_webhook(endpoint_id)

    @staff_only
    @blp.arguments(WebhookEndpointPatchSchema, example={"is_active": False})
    @blp.response(200, WebhookEndpointSchema, example={**ENDPOINT_EXAMPLE, "is_active": False})
    @operation("updateWebhookEndpoint", WebhookEndpointNotFound, UnsafeWebhookUrl)
    def patch(self, body: dict[str, Any], endpoint_id: int) -> Any:
        """Change a webhook endpoint (staff)

        Any of `url`, `event_types`, `description`, `is_active`; an empty body is a 422.
        `is_active: false` stops its deliveries (they wait); `true` starts them again."""
        return change_webhook(endpoint_id, body)

    @staff_only
    @blp.response(204)
    @operation("deleteWebhookEndpoint", WebhookEndpointNotFound)
    def delete(self, endpoint_id: int) -> None:
        """Delete a webhook endpoint and its deliveries (staff)

        Nothing more is sent to it, retries included. To pause it instead, PATCH `is_active`
        to false."""
        delete_webhook(endpoint_id)


@blp.route(f"{ENDPOINT_PATH}rotate-secret/", parameters=WEBHOOK_ID)
class RotateSecret(MethodView):
    @staff_only
    @blp.response(200, WebhookEndpointSchema, example=ENDPOINT_EXAMPLE)
    @operation("rotateWebhookSecret", WebhookEndpointNotFound)
    def post(self, endpoint_id: int) -> Any:
        """Give a webhook endpoint a new secret (staff)

        The old secret stops signing at once: every attempt from now on, retries included, is
        signed with the new one."""
        return rotate_webhook_secret(endpoint_id)


@blp.route(f"{ENDPOINT_PATH}deliveries/", parameters=WEBHOOK_ID)
class Deliveries(MethodView):
    @staff_only
    @blp.arguments(PageQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, WebhookDeliveryPageSchema)
    @operation("listWebhookDeliveries", WebhookEndpointNotFound)
    def get(self, endpoint_id: int, page: int, page_size: int) -> Any:
        """List a webhook endpoint's deliveries, newest first (staff)

        One per event sent to it, with how its attempts went."""
        req = PageRequest(page=page, page_size=page_size)
        return page_envelope(list_webhook_deliveries(endpoint_id, req), req, {})


@blp.route(f"/deliveries/<int(min=1, max={MAX_ID}):delivery_id>/retry/", parameters=DELIVERY_ID)
class RetryDelivery(MethodView):
    @staff_only
    @blp.response(202, WebhookDeliverySchema, example={**DELIVERY_EXAMPLE, "status": "pending"})
    @operation("retryWebhookDelivery", WebhookDeliveryNotFound, DeliveryNotFailed)
    def post(self, delivery_id: int) -> Any:
        """Send a failed delivery again (staff)

        It goes back to `pending`, due now; the worker sends it within a moment. A delivery
        that is not `failed` is a 409 `delivery_not_failed`."""
        return retry_webhook_delivery(delivery_id), 202
