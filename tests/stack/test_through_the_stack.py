"""The concurrency, idempotency and token suites, and the shared state, through HAProxy, two
instances and PgBouncer in transaction mode: whichever instance answers, the answer is the same."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.stack.client import Answer, Client, order
from tests.stack.conftest import Accounts, query, record_figures

pytestmark = pytest.mark.stack

INSTANCES = {"app1", "app2"}


def _stock(client: Client, product_id: int) -> int:
    answer = client.get(f"/api/v1/products/{product_id}/")
    assert answer.status == 200
    stock: int = answer.body["quantity_in_stock"]
    return stock


# --- concurrency ----------------------------------------------------------------------------------


def test_concurrent_orders_from_both_instances_never_oversell_and_the_books_balance(
    accounts: Accounts, sql: Any
) -> None:
    flour = accounts.product(stock=120)
    oats = accounts.product(stock=80)
    rounds = 15

    def buyer(seat: int) -> list[tuple[Answer, dict[int, int]]]:
        _, client = accounts.customers[seat]
        rng = random.Random(seat)
        seen = []
        for _ in range(rounds):
            wanted = {flour["id"]: rng.randint(1, 4), oats["id"]: rng.randint(1, 3)}
            lines = list(wanted.items())
            rng.shuffle(lines)  # rows are locked in id order whatever the order of the lines
            seen.append((client.post("/api/v1/orders/", order(*lines)), wanted))
        return seen

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = [a for seat in pool.map(buyer, range(6)) for a in seat]

    unexpected = [
        (a.status, a.body)
        for a, _ in answers
        if a.status != 201 and not (a.status == 409 and a.code == "out_of_stock")
    ]
    assert unexpected == []
    placed = [(a, wanted) for a, wanted in answers if a.status == 201]
    refused = [a for a, _ in answers if a.status == 409]
    assert refused, "the demand never exceeded the stock: the test proved nothing"
    assert {a.served_by for a, _ in placed} == INSTANCES
    for product in (flour, oats):
        sold = sum(wanted[product["id"]] for _, wanted in placed)
        stock = _stock(accounts.staff, product["id"])
        assert stock >= 0
        assert stock + sold == product["quantity_in_stock"]
        (in_orders,) = query(
            sql,
            "SELECT coalesce(sum(l.quantity), 0) FROM order_lines l "
            "JOIN orders o ON o.id = l.order_id "
            "WHERE l.product_id = %s AND o.status <> 'cancelled'",
            product["id"],
        )[0]
        assert in_orders == sold
    (orders_in_db,) = query(
        sql,
        "SELECT count(DISTINCT order_id) FROM order_lines WHERE product_id = %s",
        flour["id"],
    )[0]
    assert orders_in_db == len(placed)
    record_figures(
        "concurrency",
        {
            "orders_sent": len(answers),
            "placed": len(placed),
            "refused_out_of_stock": len(refused),
            "placed_by_instance": dict(Counter(a.served_by for a, _ in placed)),
        },
    )


# --- idempotency ----------------------------------------------------------------------------------


def test_a_keyed_order_replayed_on_the_other_instance_returns_the_first_answer_and_takes_stock_once(
    accounts: Accounts, sql: Any
) -> None:
    product = accounts.product(stock=10)
    _, client = accounts.customers[0]
    key = {"Idempotency-Key": f"{accounts.run}-{uuid.uuid4()}"}
    body = order((product["id"], 3))

    first = client.post("/api/v1/orders/", body, headers=key)
    replays = [client.post("/api/v1/orders/", body, headers=key) for _ in range(4)]
    reused = client.post("/api/v1/orders/", order((product["id"], 4)), headers=key)

    assert first.status == 201
    assert first.headers.get("Idempotent-Replayed") != "true"
    assert {r.served_by for r in [first, *replays]} == INSTANCES
    for replay in replays:
        assert replay.status == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.body == first.body
    assert reused.status == 422
    assert reused.code == "idempotency_key_reused"
    assert _stock(client, product["id"]) == 7
    rows = query(
        sql,
        "SELECT order_id FROM idempotency_keys WHERE key = %s",
        key["Idempotency-Key"],
    )
    assert rows == [(first.body["id"],)]


def test_the_same_keyed_order_sent_at_once_to_both_instances_makes_one_order(
    accounts: Accounts, sql: Any
) -> None:
    product = accounts.product(stock=10)
    _, client = accounts.customers[1]
    key = {"Idempotency-Key": f"{accounts.run}-{uuid.uuid4()}"}
    body = order((product["id"], 2))
    start = threading.Barrier(6)

    def send(_: int) -> Answer:
        start.wait()
        return client.post("/api/v1/orders/", body, headers=key)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(6)))

    placed = [a for a in answers if a.status == 201]
    assert placed, [(a.status, a.body) for a in answers]
    assert all(a.status == 201 or a.code == "request_in_progress" for a in answers)
    assert {a.body["id"] for a in placed} == {placed[0].body["id"]}
    assert {a.served_by for a in answers} == INSTANCES
    assert _stock(client, product["id"]) == 8
    (orders_made,) = query(
        sql, "SELECT count(*) FROM order_lines WHERE product_id = %s", product["id"]
    )[0]
    assert orders_made == 1


# --- tokens ---------------------------------------------------------------------------------------


def _me_until(client: Client, token: str, instance: str, status: int, within: float) -> float:
    """Seconds until ``instance`` answers ``GET /api/v1/me/`` with ``token`` by ``status``."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        answer = client.request("GET", "/api/v1/me/", headers={"Authorization": f"Bearer {token}"})
        if answer.served_by == instance and answer.status == status:
            return time.monotonic() - began
        time.sleep(0.05)
    pytest.fail(f"{instance} did not answer {status} within {within} s")


def test_a_rotated_refresh_token_presented_again_revokes_its_login_on_both_instances(
    accounts: Accounts,
) -> None:
    username = accounts.spare[0]
    client = Client()
    tokens = client.login(username)
    for instance in INSTANCES:
        _me_until(client, tokens["access"], instance, 200, within=5)

    rotated = client.post("/api/token/refresh/", {"refresh": tokens["refresh"]})
    replayed = client.post("/api/token/refresh/", {"refresh": tokens["refresh"]})
    after = client.post("/api/token/refresh/", {"refresh": rotated.body["refresh"]})

    assert rotated.status == 200
    assert rotated.body["refresh"] != tokens["refresh"]
    assert replayed.status == 401
    assert after.status == 401, "a spent refresh token presented again revokes its whole family"
    for token in (tokens["access"], rotated.body["access"]):
        for instance in INSTANCES:
            _me_until(client, token, instance, 401, within=10)


def test_a_login_revoked_on_one_instance_is_refused_by_the_other_within_ten_seconds(
    accounts: Accounts,
) -> None:
    username = accounts.spare[1]
    client = Client()
    tokens = client.login(username)
    for instance in INSTANCES:
        _me_until(client, tokens["access"], instance, 200, within=5)

    revoked = client.post("/api/token/revoke/", {"refresh": tokens["refresh"]})
    revoked_at = time.monotonic()
    assert revoked.status == 204
    other = (INSTANCES - {revoked.served_by}).pop()
    refused_after = _me_until(client, tokens["access"], other, 401, within=10)
    later = [
        client.request(
            "GET", "/api/v1/me/", headers={"Authorization": f"Bearer {tokens['access']}"}
        )
        for _ in range(6)
    ]

    assert [a.status for a in later] == [401] * 6
    assert {a.served_by for a in later} == INSTANCES
    record_figures(
        "token_revocation",
        {
            "revoked_on": revoked.served_by,
            "refused_by_other_after_s": round(refused_after, 3),
            "seconds_since_revoke_at_check": round(time.monotonic() - revoked_at, 3),
        },
    )


# --- limits ---------------------------------------------------------------------------------------


def test_the_login_limit_counts_attempts_on_both_instances_together(accounts: Accounts) -> None:
    client = Client()
    attempt = {"username": f"{accounts.run}-guessed", "password": "not-the-password"}

    first_ten = [client.post("/api/token/", attempt) for _ in range(10)]
    beyond = [client.post("/api/token/", attempt)]
    while {a.served_by for a in beyond} != INSTANCES and len(beyond) < 6:
        beyond.append(client.post("/api/token/", attempt))

    assert [a.status for a in first_ten] == [401] * 10
    assert {a.served_by for a in first_ten} == INSTANCES, "both instances counted attempts"
    assert [a.status for a in beyond] == [429] * len(beyond)
    assert {a.served_by for a in beyond} == INSTANCES, "each instance refuses the 11th and on"
    assert all(int(a.headers["Retry-After"]) > 0 for a in beyond)


# --- nothing depends on which instance answered ---------------------------------------------------


def test_an_etag_from_one_instance_is_honoured_by_the_other(accounts: Accounts) -> None:
    product = accounts.product(stock=5)
    client = Client()
    path = f"/api/v1/products/{product['id']}/"

    answers = [client.get(path) for _ in range(4)]
    etag = answers[0].headers["ETag"]
    conditional = [client.get(path, headers={"If-None-Match": etag}) for _ in range(4)]

    assert {a.served_by for a in answers} == INSTANCES
    assert {a.headers["ETag"] for a in answers} == {etag}
    assert all(a.body == answers[0].body for a in answers)
    assert [a.status for a in conditional] == [304] * 4
    assert {a.served_by for a in conditional} == INSTANCES


def test_page_links_name_the_load_balancer_whatever_forwarded_host_the_client_sends(
    accounts: Accounts,
) -> None:
    accounts.product(stock=1)
    accounts.product(stock=1)
    client = Client()
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "4443"}

    pages = [client.get("/api/v1/products/?page_size=1", headers=forged) for _ in range(2)]

    assert {p.served_by for p in pages} == INSTANCES
    for page in pages:
        assert page.body["next"].startswith("http://127.0.0.1:8080/api/v1/products/?")
