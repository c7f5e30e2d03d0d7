"""The admin's webhook pages: create, edit, disable, rotate the secret, deliveries with their
attempts, and sending a failed one again."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient

from opply.application.webhooks import DeliveryPolicy, SendOutcome
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.test_admin import admin_login, post, staff, text
from tests.integration.test_api_webhooks import committed
from tests.integration.test_webhook_store import fan_out_everything

__all__ = ["committed", "staff"]  # fixtures used here
SECRET_RE = re.compile(r'<code id="secret">(whsec_[^<]+)</code>')


def _secret(page: str) -> str:
    found = SECRET_RE.search(page)
    assert found, "no secret on the page"
    return found.group(1)


def test_staff_create_an_endpoint_and_see_its_secret(staff: FlaskClient) -> None:
    page = post(
        staff,
        "/admin/webhooks/new/",
        {"url": "https://erp.example.com/hooks", "event_types": ["order.placed", "order.shipped"]},
    )

    assert page.status_code == 200
    assert "Endpoint created" in text(page)
    assert _secret(text(page)).startswith("whsec_")
    assert "https://erp.example.com/hooks" in text(staff.get("/admin/webhooks/"))


def test_a_wrong_endpoint_form_says_why_and_keeps_what_was_typed(staff: FlaskClient) -> None:
    page = post(staff, "/admin/webhooks/new/", {"url": "ftp://erp.example.com/", "event_types": []})

    assert page.status_code == 422
    assert "ftp://erp.example.com/" in text(page)
    assert "Event types" in text(page)


def test_staff_edit_disable_enable_and_rotate_an_endpoint(staff: FlaskClient) -> None:
    created = post(
        staff,
        "/admin/webhooks/new/",
        {"url": "https://erp.example.com/hooks", "event_types": ["order.placed"]},
    )
    path = re.search(r'action="(/admin/webhooks/\d+/)"', text(created))
    assert path
    detail = path.group(1)
    first_secret = _secret(text(created))

    saved = post(
        staff,
        detail,
        {
            "url": "https://erp.example.com/v2",
            "description": "ERP",
            "event_types": ["order.shipped"],
        },
    )
    assert "Endpoint saved." in text(saved)
    assert 'value="https://erp.example.com/v2"' in text(saved)
    assert re.search(r'value="order.shipped" checked', text(saved))
    assert not re.search(r'value="order.placed" checked', text(saved))

    disabled = post(staff, detail + "disable/")
    assert '<span class="badge badge-cancelled" id="state">disabled</span>' in text(disabled)
    enabled = post(staff, detail + "enable/")
    assert '<span class="badge badge-placed" id="state">active</span>' in text(enabled)

    rotated = post(staff, detail + "rotate-secret/")
    assert "New secret" in text(rotated)
    assert _secret(text(rotated)) != first_secret


def test_a_customer_may_not_open_the_webhook_pages(
    client: FlaskClient, container: Container
) -> None:
    admin_login(client, f.user(container).username)

    assert client.get("/admin/webhooks/").status_code in (302, 303, 403)


def test_staff_see_each_attempt_and_send_a_failed_delivery_again(
    committed: tuple[FlaskClient, Container],
) -> None:
    client, container = committed
    user = f.user(container, staff=True)
    assert admin_login(client, user.username).status_code == 303
    post(
        client,
        "/admin/webhooks/new/",
        {"url": "https://erp.example.com/hooks", "event_types": ["order.placed"]},
    )
    customer = f.user(container).username
    product = f.product(container.uow(), stock=5)
    client.post(
        "/api/v1/orders/", json=f.order_body((product.id, 1)), headers=f.bearer(client, customer)
    )
    store, now = container.webhook_store(), container.clock().now()
    assert fan_out_everything(store, now) == 1
    [claimed] = store.claim(now, timedelta(minutes=1), 1)
    policy = DeliveryPolicy(schedule=())
    store.record(policy.result(claimed, SendOutcome(status_code=503), at=now, duration_ms=42))

    page = text(client.get(f"/admin/webhooks/deliveries/{claimed.delivery_id}/"))
    assert 'id="status">failed</span>' in page
    assert "503" in page
    assert "42 ms" in page
    again = post(client, f"/admin/webhooks/deliveries/{claimed.delivery_id}/retry/")
    assert "goes out again" in text(again)
    assert 'id="status">pending</span>' in text(again)
