"""The staff webhook API on SQLite and PostgreSQL: endpoints, secrets, deliveries, retries."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from opply.adapters.webhook_http import UrlPolicy
from opply.application.webhooks import DeliveryPolicy, SendOutcome
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.container import Container
from tests.integration import factories as f
from tests.integration.conftest import (
    Database,
    build_test_container,
    empty_every_table,
    make_settings,
)
from tests.integration.test_webhook_store import fan_out_everything, reset_fanout

HOOKS = "/api/v1/staff/webhooks/"
NEW = {"url": "https://erp.example.com/hooks", "event_types": ["order.placed"]}


@pytest.fixture
def staff(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container, staff=True).username)


@pytest.fixture
def customer(client: FlaskClient, container: Container) -> dict[str, str]:
    return f.bearer(client, f.user(container, username="alice").username)


def create(client: FlaskClient, staff: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(HOOKS, json={**NEW, **body}, headers=staff)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def test_staff_create_an_endpoint_and_get_its_secret_once_and_on_demand(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    response = client.post(HOOKS, json={**NEW, "description": "ERP"}, headers=staff)

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{HOOKS}{body['id']}/"
    assert set(body) == {
        "id",
        "url",
        "event_types",
        "description",
        "secret",
        "is_active",
        "created_at",
    }
    assert (body["url"], body["event_types"], body["description"], body["is_active"]) == (
        NEW["url"],
        ["order.placed"],
        "ERP",
        True,
    )
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    assert client.get(f"{HOOKS}{body['id']}/", headers=staff).get_json() == body
    listed = client.get(HOOKS, headers=staff).get_json()
    assert listed["count"] == 1
    assert listed["results"] == [body]


def test_every_endpoint_gets_its_own_secret(client: FlaskClient, staff: dict[str, str]) -> None:
    assert create(client, staff)["secret"] != create(client, staff)["secret"]


def test_rotating_the_secret_gives_a_new_one_at_once(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    endpoint = create(client, staff)

    rotated = client.post(f"{HOOKS}{endpoint['id']}/rotate-secret/", headers=staff)

    assert rotated.status_code == 200
    assert rotated.get_json()["secret"] != endpoint["secret"]
    assert (
        client.get(f"{HOOKS}{endpoint['id']}/", headers=staff).get_json()["secret"]
        == (rotated.get_json()["secret"])
    )


def test_staff_change_some_fields_of_an_endpoint(
    client: FlaskClient, staff: dict[str, str]
) -> None:
    endpoint = create(client, staff)

    changed = client.patch(
        f"{HOOKS}{endpoint['id']}/",
        json={"is_active": False, "event_types": ["order.shipped", "order.cancelled"]},
        headers=staff,
    )

    assert changed.status_code == 200
    assert changed.get_json() == {
        **endpoint,
        "is_active": False,
        "event_types": ["order.shipped", "order.cancelled"],
    }


def test_an_empty_change_is_a_422(client: FlaskClient, staff: dict[str, str]) -> None:
    endpoint = create(client, staff)

    response = client.patch(f"{HOOKS}{endpoint['id']}/", json={}, headers=staff)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://x.example.com", "event_types": []},
        {"url": "https://x.example.com", "event_types": ["order.lost"]},
        {"url": "", "event_types": ["order.placed"]},
        {"event_types": ["order.placed"]},
        {"url": "https://x.example.com", "event_types": ["order.placed"], "secret": "mine"},
    ],
)
def test_a_wrong_endpoint_is_a_validation_error(
    client: FlaskClient, staff: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post(HOOKS, json=body, headers=staff)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_an_internal_or_plain_http_url_is_unsafe_in_production_settings(
    client: FlaskClient,
    staff: dict[str, str],
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy: UrlPolicy = container.url_policy()
    monkeypatch.setattr(policy, "allow_http", False)  # as production's defaults
    monkeypatch.setattr(policy, "allow_private", False)
    for url in ("http://erp.example.com/x", "https://169.254.169.254/", "https://10.0.0.7/"):
        response = client.post(HOOKS, json={**NEW, "url": url}, headers=staff)
        assert response.status_code == 422, url
        assert response.get_json()["code"] == "unsafe_webhook_url"
    endpoint = create(client, staff)
    patched = client.patch(
        f"{HOOKS}{endpoint['id']}/", json={"url": "https://127.0.0.1/"}, headers=staff
    )
    assert patched.status_code == 422
    assert patched.get_json()["code"] == "unsafe_webhook_url"


def test_deleting_an_endpoint_removes_it(client: FlaskClient, staff: dict[str, str]) -> None:
    endpoint = create(client, staff)

    assert client.delete(f"{HOOKS}{endpoint['id']}/", headers=staff).status_code == 204

    gone = client.get(f"{HOOKS}{endpoint['id']}/", headers=staff)
    assert gone.status_code == 404
    assert gone.get_json()["code"] == "not_found"
    assert client.delete(f"{HOOKS}{endpoint['id']}/", headers=staff).status_code == 404


def test_customers_may_not_see_or_touch_webhooks(
    client: FlaskClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    endpoint = create(client, staff)
    attempts = [
        client.get(HOOKS, headers=customer),
        client.post(HOOKS, json=NEW, headers=customer),
        client.get(f"{HOOKS}{endpoint['id']}/", headers=customer),
        client.patch(f"{HOOKS}{endpoint['id']}/", json={"is_active": False}, headers=customer),
        client.delete(f"{HOOKS}{endpoint['id']}/", headers=customer),
        client.post(f"{HOOKS}{endpoint['id']}/rotate-secret/", headers=customer),
        client.get(f"{HOOKS}{endpoint['id']}/deliveries/", headers=customer),
        client.post(f"{HOOKS}deliveries/1/retry/", headers=customer),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert {r.get_json()["code"] for r in attempts} == {"permission_denied"}
    assert client.get(HOOKS).status_code == 401


@pytest.fixture
def committed(committed_db: Database) -> Iterator[tuple[FlaskClient, Container]]:
    """An app on real commits: the fan-out reads only committed events below PostgreSQL's
    horizon, which events of a test's open transaction never pass."""
    container = build_test_container(committed_db)
    app = create_app(make_settings(committed_db), container=container)
    reset_fanout(committed_db)
    yield app.test_client(), container
    unwire_app(app)
    empty_every_table(committed_db)
    reset_fanout(committed_db)


def test_deliveries_are_listed_newest_first_and_a_failed_one_can_be_sent_again(
    committed: tuple[FlaskClient, Container],
) -> None:
    client, container = committed
    staff = f.bearer(client, f.user(container, staff=True).username)
    customer = f.bearer(client, f.user(container).username)
    endpoint = create(client, staff, event_types=["order.placed", "order.cancelled"])
    product = f.product(container.uow(), stock=5)
    placed = client.post("/api/v1/orders/", json=f.order_body((product.id, 1)), headers=customer)
    client.post(f"/api/v1/orders/{placed.get_json()['id']}/cancel/", headers=customer)
    store = container.webhook_store()
    assert fan_out_everything(store, container.clock().now()) == 2
    # The first attempt of the oldest fails for good (an empty schedule: no retries).
    claimed = store.claim(container.clock().now(), timedelta(minutes=1), 1)[0]
    outcome_at = container.clock().now()
    store.record(
        DeliveryPolicy(schedule=()).result(
            claimed, SendOutcome(status_code=500), at=outcome_at, duration_ms=12
        )
    )

    page = client.get(f"{HOOKS}{endpoint['id']}/deliveries/", headers=staff)

    assert page.status_code == 200
    [cancelled, failed] = page.get_json()["results"]
    assert cancelled["event_type"] == "order.cancelled"
    assert (cancelled["status"], cancelled["attempts"], cancelled["last_status_code"]) == (
        "pending",
        0,
        None,
    )
    assert failed == {
        "id": claimed.delivery_id,
        "event_id": claimed.event.id,
        "event_type": "order.placed",
        "status": "failed",
        "attempts": 1,
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "next_attempt_at": None,
        "created_at": failed["created_at"],
    }
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'opply_webhook_deliveries{status="failed"} 1.0' in metrics
    assert 'opply_webhook_deliveries{status="pending"} 1.0' in metrics
    assert 'opply_webhook_deliveries{status="delivered"} 0.0' in metrics
    [age] = [ln for ln in metrics.splitlines() if ln.startswith("opply_webhook_oldest_pending")]
    assert 0 <= float(age.split()[1]) < 60
    retried = client.post(f"{HOOKS}deliveries/{failed['id']}/retry/", headers=staff)
    assert retried.status_code == 202
    assert retried.get_json()["status"] == "pending"
    assert retried.get_json()["next_attempt_at"] is not None
    again = client.post(f"{HOOKS}deliveries/{failed['id']}/retry/", headers=staff)
    assert again.status_code == 409
    assert again.get_json()["code"] == "delivery_not_failed"
    missing = client.post(f"{HOOKS}deliveries/{failed['id'] + 1000}/retry/", headers=staff)
    assert missing.status_code == 404
    unknown_endpoint = client.get(f"{HOOKS}{endpoint['id'] + 1000}/deliveries/", headers=staff)
    assert unknown_endpoint.status_code == 404
