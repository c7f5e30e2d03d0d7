"""An instance dies under traffic, and a deploy restarts both: what the phones see.

Both tests leave the stack whole (``stack.py up`` after them, whatever happened) and record
their figures in ``.stack/figures/``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stack.stack import load_started
from tests.stack.client import CONNECTION_ERRORS, Answer, Client, order
from tests.stack.conftest import (
    Accounts,
    backend_counters,
    query,
    record_figures,
    run_stack,
    wait_for_status,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ORDERS = "/api/v1/orders/"
PHONES = 6
# The longest a phone may see failures after an instance dies: HAProxy's health check needs two
# failed probes a second apart to take it out, and retries the rest on the other instance.
OUTAGE_BOUND_SECONDS = 10.0


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic()
    phone: int
    key: str
    outcome: str  # "201", "503 database_unavailable", "ConnectionResetError", ...
    served_by: str


def _outcome(answer: Answer) -> str:
    return f"{answer.status} {answer.code}" if answer.code else str(answer.status)


def _send(
    seat: int, client: Client, method: str, path: str, body: Any = None, key: str = ""
) -> Attempt:
    at = time.monotonic()
    headers = {"Idempotency-Key": key} if key else {}
    try:
        answer = client.request(method, path, body, headers=headers)
    except CONNECTION_ERRORS as error:
        return Attempt(at, seat, key, type(error).__name__, "")
    return Attempt(at, seat, key, _outcome(answer), answer.served_by)


def _worth_retrying(attempt: Attempt) -> bool:
    """What a phone retries with the same key: no answer (from the instance: the load balancer's
    502 or 504, or from the load balancer itself), 503, or the first try still running."""
    return not attempt.outcome[0].isdigit() or attempt.outcome.startswith(
        ("502", "503", "504", "409 request_in_progress")
    )


@pytest.fixture
def repaired() -> Iterator[None]:
    yield
    run_stack("up")


def _moved(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], key: str) -> int:
    """How far the backend's counter ``key`` moved (its row sums its servers')."""
    return after["BACKEND"][key] - before["BACKEND"][key]


def test_killing_an_instance_costs_keyed_phones_a_bounded_outage_and_never_a_second_order(
    accounts: Accounts, sql: Any, repaired: None
) -> None:
    product = accounts.product(stock=100_000, price="1.00")
    body = order((product["id"], 1))
    attempts: list[Attempt] = []
    gave_up: list[Attempt] = []
    stop = threading.Event()
    lock = threading.Lock()

    def phone(seat: int) -> None:
        _, client = accounts.customers[seat]
        while not stop.is_set():
            key = f"{accounts.run}-kill-{seat}-{uuid.uuid4().hex}"
            deadline = time.monotonic() + 60
            while True:
                attempt = _send(seat, client, "POST", ORDERS, body, key=key)
                with lock:
                    attempts.append(attempt)
                if attempt.outcome == "201":
                    break
                if not _worth_retrying(attempt) or time.monotonic() > deadline:
                    with lock:
                        gave_up.append(attempt)
                    break
                time.sleep(0.1)

    victim = load_started()["app1"]
    assert victim.alive()
    before = backend_counters()
    phones = [threading.Thread(target=phone, args=(seat,)) for seat in range(PHONES)]
    for thread in phones:
        thread.start()
    time.sleep(2.0)

    killed_at = time.monotonic()
    os.killpg(victim.pid, signal.SIGKILL)  # the master and its workers, as a crashed host would
    down_at = wait_for_status("app1", "DOWN", timeout=15)
    time.sleep(2.0)
    restart_at = time.monotonic()
    run_stack("up")  # starts what is missing: app1
    up_at = wait_for_status("app1", "UP", timeout=20)
    time.sleep(2.0)
    stop.set()
    for thread in phones:
        thread.join(timeout=90)
    after = backend_counters()

    assert gave_up == []
    rows = query(
        sql,
        "SELECT key, order_id FROM idempotency_keys WHERE key LIKE %s",
        f"{accounts.run}-kill-%",
    )
    keys = {a.key for a in attempts}
    assert {a.key for a in attempts if a.outcome == "201"} == keys, "every key got its order"
    assert {key for key, _ in rows} == keys
    assert all(order_id is not None for _, order_id in rows)
    (orders_made, units) = query(
        sql,
        "SELECT count(DISTINCT order_id), coalesce(sum(quantity), 0) FROM order_lines "
        "WHERE product_id = %s",
        product["id"],
    )[0]
    assert orders_made == len(keys), "exactly one order per key"
    assert units == len(keys)
    failures = [a for a in attempts if a.outcome != "201"]
    if failures:
        assert min(a.at for a in failures) >= killed_at - 0.5
        assert max(a.at for a in failures) <= killed_at + OUTAGE_BOUND_SECONDS
        assert max(a.at for a in failures) < restart_at, "only successes once it is back"
    assert down_at is not None, "HAProxy never marked the killed instance DOWN"
    assert up_at is not None, "HAProxy never marked the restarted instance UP"
    assert "app1" in {a.served_by for a in attempts if a.at > up_at}
    outage = max(a.at for a in failures) - min(a.at for a in failures) if failures else 0.0
    record_figures(
        "instance_failure",
        {
            "phones": PHONES,
            "requests": len(attempts),
            "keys": len(keys),
            "orders_made": orders_made,
            "failed_requests": len(failures),
            "failures_by_kind": dict(Counter(a.outcome for a in failures)),
            "outage_seconds": round(outage, 3),
            "down_after_kill_seconds": round(down_at - killed_at, 3),
            "up_after_restart_seconds": round(up_at - restart_at, 3),
            "haproxy_retries": _moved(before, after, "wretr"),
            "haproxy_redispatches": _moved(before, after, "wredis"),
            "served_by_app2_while_down": sum(
                1 for a in attempts if killed_at < a.at < up_at and a.served_by == "app2"
            ),
        },
    )


def test_a_rolling_restart_under_steady_orders_and_lists_fails_no_request(
    accounts: Accounts, repaired: None
) -> None:
    product = accounts.product(stock=100_000, price="1.00")
    body = order((product["id"], 1))
    attempts: list[Attempt] = []
    stop = threading.Event()
    lock = threading.Lock()

    def keep(attempt: Attempt) -> None:
        with lock:
            attempts.append(attempt)

    def ordering(seat: int) -> None:  # no retries: any failure is counted
        _, client = accounts.customers[seat]
        while not stop.is_set():
            key = f"{accounts.run}-roll-{seat}-{uuid.uuid4().hex}"
            keep(_send(seat, client, "POST", ORDERS, body, key=key))
            time.sleep(0.01)

    def listing(seat: int) -> None:
        _, client = accounts.customers[seat]
        while not stop.is_set():
            keep(_send(seat, client, "GET", f"{ORDERS}?page_size=5"))
            keep(_send(seat, client, "GET", "/api/v1/products/?page_size=20"))
            time.sleep(0.01)

    pids_before = {name: p.pid for name, p in load_started().items()}
    before = backend_counters()
    workers = [threading.Thread(target=ordering, args=(seat,)) for seat in (0, 1)]
    workers += [threading.Thread(target=listing, args=(seat,)) for seat in (2, 3)]
    for thread in workers:
        thread.start()
    time.sleep(1.5)
    began = time.monotonic()
    output = run_stack("restart")
    ended = time.monotonic()
    time.sleep(1.5)
    stop.set()
    for thread in workers:
        thread.join(timeout=60)
    after = backend_counters()
    pids_after = {name: p.pid for name, p in load_started().items()}

    failures = [a for a in attempts if not a.outcome.startswith("2")]
    assert failures == []
    # A restart that skipped draining would have its failures hidden by HAProxy's retries.
    assert _moved(before, after, "wretr") == 0
    assert _moved(before, after, "wredis") == 0
    assert pids_after["app1"] != pids_before["app1"]
    assert pids_after["app2"] != pids_before["app2"]
    during = [a for a in attempts if began <= a.at <= ended]
    assert {a.served_by for a in during} == {"app1", "app2"}
    assert {a.served_by for a in attempts if a.at > ended} == {"app1", "app2"}
    record_figures(
        "rolling_restart",
        {
            "requests": len(attempts),
            "requests_during_restart": len(during),
            "orders": sum(1 for a in attempts if a.outcome == "201"),
            "failed_requests": len(failures),
            "restart_seconds": round(ended - began, 2),
            "haproxy_retries": _moved(before, after, "wretr"),
            "haproxy_redispatches": _moved(before, after, "wredis"),
            "haproxy_connection_errors": _moved(before, after, "econ"),
            "haproxy_response_errors": _moved(before, after, "eresp"),
            "steps": [line.removeprefix("stack: ") for line in output.splitlines()],
        },
    )
