"""Admin webhook pages: endpoints (create, edit, disable, rotate the secret), their deliveries
with each attempt, and sending a failed delivery again."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from dependency_injector.wiring import Provide
from flask import flash, redirect, render_template, request, url_for

from opply.application.dto import PageRequest
from opply.application.webhooks import (
    ChangeWebhookEndpoint,
    CreateWebhookEndpoint,
    GetWebhookDelivery,
    GetWebhookEndpoint,
    ListWebhookDeliveries,
    ListWebhookEndpoints,
    RetryWebhookDelivery,
    RotateWebhookSecret,
)
from opply.domain import errors as de
from opply.entrypoints.admin.forms import FormError
from opply.entrypoints.admin.site import PAGE_SIZE, act, bp, page_number, pager
from opply.entrypoints.api.schemas import (
    EVENT_TYPES,
    WebhookEndpointCreateSchema,
    WebhookEndpointPatchSchema,
)
from opply.entrypoints.container import Container

list_webhooks: ListWebhookEndpoints = Provide[Container.list_webhooks]
get_webhook: GetWebhookEndpoint = Provide[Container.get_webhook]
create_webhook: CreateWebhookEndpoint = Provide[Container.create_webhook]
change_webhook: ChangeWebhookEndpoint = Provide[Container.change_webhook]
rotate_webhook_secret: RotateWebhookSecret = Provide[Container.rotate_webhook_secret]
list_webhook_deliveries: ListWebhookDeliveries = Provide[Container.list_webhook_deliveries]
get_webhook_delivery: GetWebhookDelivery = Provide[Container.get_webhook_delivery]
retry_webhook_delivery: RetryWebhookDelivery = Provide[Container.retry_webhook_delivery]

CREATE = WebhookEndpointCreateSchema()
EDIT = WebhookEndpointPatchSchema(exclude=("is_active",))  # its own buttons: enable, disable


def _parse(schema: ma.Schema) -> Any:
    """The form as the API's schema reads it (event types are ticked boxes)."""
    data = {
        "url": request.form.get("url", "").strip(),
        "description": request.form.get("description", ""),
        "event_types": request.form.getlist("event_types"),
    }
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
        raise FormError(messages) from None


def _typed() -> dict[str, Any]:
    return {
        "url": request.form.get("url", ""),
        "description": request.form.get("description", ""),
        "event_types": request.form.getlist("event_types"),
    }


@bp.route("/webhooks/")
def webhooks() -> Any:
    page = page_number()
    found = list_webhooks(PageRequest(page=page, page_size=PAGE_SIZE))
    return render_template(
        "admin/webhooks.html", endpoints=found.items, pager=pager(found, page, "admin.webhooks")
    )


@bp.route("/webhooks/new/", methods=["GET", "POST"])
def webhook_new() -> Any:
    if request.method == "GET":
        form = {"url": "", "description": "", "event_types": list(EVENT_TYPES)}
        return render_template("admin/webhook_form.html", form=form, types=EVENT_TYPES)
    try:
        endpoint = create_webhook(**_parse(CREATE))
    except (de.DomainError, FormError) as error:
        flash(error.detail, "error")
        page = render_template("admin/webhook_form.html", form=_typed(), types=EVENT_TYPES)
        return page, 422
    flash("Endpoint created: give its secret to the receiver.", "success")
    return redirect(url_for("admin.webhook_detail", endpoint_id=endpoint.id), 303)


def _detail(endpoint_id: int, form: dict[str, Any] | None = None, status: int = 200) -> Any:
    endpoint = get_webhook(endpoint_id)
    page = page_number()
    found = list_webhook_deliveries(endpoint_id, PageRequest(page=page, page_size=PAGE_SIZE))
    shown = form or {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
    }
    html = render_template(
        "admin/webhook_detail.html",
        endpoint=endpoint,
        form=shown,
        types=EVENT_TYPES,
        deliveries=found.items,
        page=page,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        total=found.total,
    )
    return html, status


@bp.route("/webhooks/<int:endpoint_id>/", methods=["GET", "POST"])
def webhook_detail(endpoint_id: int) -> Any:
    if request.method == "GET":
        return _detail(endpoint_id)
    try:
        change_webhook(endpoint_id, _parse(EDIT))
    except (de.DomainError, FormError) as error:
        flash(error.detail, "error")
        return _detail(endpoint_id, _typed(), 422)
    flash("Endpoint saved.", "success")
    return redirect(url_for("admin.webhook_detail", endpoint_id=endpoint_id), 303)


@bp.route("/webhooks/<int:endpoint_id>/<any(enable, disable):action>/", methods=["POST"])
def webhook_switch(endpoint_id: int, action: str) -> Any:
    active = action == "enable"
    return act(
        lambda: change_webhook(endpoint_id, {"is_active": active}),
        "Endpoint enabled: its waiting deliveries go out now."
        if active
        else "Endpoint disabled: nothing is sent to it until it is enabled.",
        url_for("admin.webhook_detail", endpoint_id=endpoint_id),
    )


@bp.route("/webhooks/<int:endpoint_id>/rotate-secret/", methods=["POST"])
def webhook_rotate(endpoint_id: int) -> Any:
    return act(
        lambda: rotate_webhook_secret(endpoint_id),
        "New secret: every delivery from now on is signed with it.",
        url_for("admin.webhook_detail", endpoint_id=endpoint_id),
    )


@bp.route("/webhooks/deliveries/<int:delivery_id>/")
def webhook_delivery(delivery_id: int) -> Any:
    delivery, attempts = get_webhook_delivery(delivery_id)
    return render_template("admin/webhook_delivery.html", delivery=delivery, attempts=attempts)


@bp.route("/webhooks/deliveries/<int:delivery_id>/retry/", methods=["POST"])
def webhook_retry(delivery_id: int) -> Any:
    return act(
        lambda: retry_webhook_delivery(delivery_id),
        f"Delivery {delivery_id} goes out again in a moment.",
        url_for("admin.webhook_delivery", delivery_id=delivery_id),
    )
