"""A webhook's body: the event in the API's own wire format (``WebhookEventSchema``, the staff
order inside), as compact JSON bytes. Signed and sent as they are."""

from __future__ import annotations

import json

from opply.application.dto import OrderEventView
from opply.entrypoints.api.schemas import WebhookEventSchema

_SCHEMA = WebhookEventSchema()


def render_webhook_event(event: OrderEventView) -> bytes:
    return json.dumps(_SCHEMA.dump(event), separators=(",", ":"), ensure_ascii=False).encode()
