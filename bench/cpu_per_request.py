"""Python CPU time per request of the hot endpoints, in-process, on a throwaway PostgreSQL.

The app runs with production settings (limiter, metrics, request log) behind Flask's test
client, so there is no HTTP and no gunicorn: what is left is our own process's CPU time
(``time.process_time``) per request, the figure that bounds the rates of `make bench` on a
2-core machine. The bare app (``bare_app.py``) answers the requests it serves beside it. The
last rows take the bearer-token path apart: verifying a token (PyJWT, or the process's memory
of tokens it verified) and resolving the caller (that, plus the per-request user check).

Issue 18's rows: the same 2-line order with events off (``events_off.py``: the service's unit of
work, writing nothing down on commit), measured round by round in turn with the order with
events so that both see the same machine, and the ratio; the event feed polled by a reader that
is up to date (nothing new) and a first poll (a full page of 50 events), beside the product
list page.

Run with `.venv/bin/python bench/cpu_per_request.py [--quick]` (BENCH_DATABASE_URL as for
`make bench`; CPU_REQUESTS requests per round, 1,000 by default; the least of CPU_ROUNDS rounds,
3, is printed; CPU_ROWS="word,word" keeps the rows whose name holds one of the words;
CPU_PROFILE names a row to profile with cProfile, CPU_SORT its order, CPU_CALLERS a pattern of
functions whose callers to list).
"""

from __future__ import annotations

import cProfile
import itertools
import os
import pstats
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

import bare_app
import events_off
from dataset import PASSWORD, load, migrated_engine, throwaway_database
from knobs import from_environment
from sqltrace import order_body

QUICK = "--quick" in sys.argv
REQUESTS = int(os.environ.get("CPU_REQUESTS") or (100 if QUICK else 1000))
ROUNDS = int(os.environ.get("CPU_ROUNDS") or (1 if QUICK else 3))
PROFILE = os.environ.get("CPU_PROFILE")  # a name of a row: profile it with cProfile instead
ONLY = [word.strip() for word in os.environ.get("CPU_ROWS", "").split(",") if word.strip()]


@dataclass(frozen=True, kw_only=True)
class Request:
    """One row: a request, as a customer (``auth``) or not; an order of ``order_lines`` lines,
    with an Idempotency-Key if ``keyed``; ``bare``: the bare app serves it too; ``events``:
    with order events (else the service's unit of work writes none); ``versus``: the row it is
    measured against, round by round in turn, with the ratio printed."""

    name: str
    method: str = "GET"
    path: str
    auth: bool = False
    order_lines: int = 0
    keyed: bool = False
    expect: int = 200
    bare: bool = False
    events: bool = True
    versus: str = ""


ROWS: tuple[Request, ...] = (
    Request(name="product detail", path="/api/v1/products/7/", bare=True),
    Request(name="product list page", path="/api/v1/products/", bare=True),
    Request(
        name="place an order of 2 lines",
        method="POST",
        path="/api/v1/orders/",
        auth=True,
        order_lines=2,
        expect=201,
    ),
    Request(
        name="place an order of 2 lines, keyed",
        method="POST",
        path="/api/v1/orders/",
        auth=True,
        order_lines=2,
        keyed=True,
        expect=201,
        bare=True,
    ),
    Request(
        name="order history page (20 orders of 2 lines)",
        path="/api/v1/orders/",
        auth=True,
        bare=True,
    ),
    Request(
        name="place an order of 2 lines, events off",
        method="POST",
        path="/api/v1/orders/",
        auth=True,
        order_lines=2,
        expect=201,
        events=False,
        versus="place an order of 2 lines",
    ),
    Request(name="order detail", path="/api/v1/orders/{order_id}/", auth=True),
    Request(  # last: its orders would fill the history page above
        name="place an order of 50 lines",
        method="POST",
        path="/api/v1/orders/",
        auth=True,
        order_lines=50,
        expect=201,
    ),
    Request(
        name="event feed poll, up to date",
        path="/api/v1/me/events/?after={feed_end}",
        auth=True,
        versus="product list page",
    ),
    Request(
        name="event feed, first poll (50 events)",
        path="/api/v1/me/events/",
        auth=True,
        versus="product list page",
    ),
)
KEYS = itertools.count(1)


def per_call_ms(call: Callable[[int], None]) -> float:
    """CPU milliseconds per call: the least of ROUNDS rounds of REQUESTS calls, after 50."""
    for i in range(50):  # warm-up: statement caches, first-use imports
        call(i)
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for i in range(REQUESTS):
            call(i)
        rounds.append((time.process_time() - started) / REQUESTS * 1000)
    return min(rounds)  # the least disturbed by the other processes on the machine


def in_turn_ms(calls: Sequence[Callable[[int], None]]) -> tuple[list[float], float]:
    """Each call's CPU milliseconds (the least of ROUNDS rounds, as ``per_call_ms``), the calls
    taken in turn request by request (a, b, a, b...), and the ratio of the first's CPU time to
    the second's over all rounds: a change in the machine's load reaches both alike, so it does
    not pass for a difference between them (rows measured one after the other on this shared
    machine differed by 10-30% for the same request)."""
    for call in calls:
        for i in range(50):
            call(i)
    rounds: list[list[float]] = [[] for _ in calls]
    for _ in range(ROUNDS):
        spent = [0.0 for _ in calls]
        for i in range(REQUESTS):
            for k, call in enumerate(calls):
                started = time.process_time()
                call(i)
                spent[k] += time.process_time() - started
        for k, total in enumerate(spent):
            rounds[k].append(total / REQUESTS * 1000)
    ratio = sum(rounds[0]) / sum(rounds[1])
    return [min(kept) for kept in rounds], ratio


def http_call(
    client: FlaskClient,
    row: Request,
    token: str,
    places: dict[str, Any],
    switch: events_off.EventsSwitch | None = None,
) -> Callable[[int], None]:
    """``row``'s request; ``places`` fills its path; ``switch`` (the service's) is set to the
    row's ``events`` before each request."""
    path = row.path.format(**places)

    def call(i: int) -> None:
        if switch is not None:
            switch.events = row.events
        headers = {"Authorization": f"Bearer {token}"} if row.auth else {}
        body = order_body(row.order_lines, i) if row.order_lines else None
        if row.keyed:
            headers["Idempotency-Key"] = f"cpu-{next(KEYS)}"
        response = client.open(path, method=row.method, json=body, headers=headers)
        if response.status_code != row.expect:
            raise SystemExit(f"{row.name}: {response.status_code} {response.get_data()!r}")

    return call


def token_calls(app: Flask, token: str) -> dict[str, Callable[[int], None]]:
    """The bearer-token path of every authenticated request, taken apart."""
    container = app.extensions["container"]
    tokens = container.token_service()
    claims = tokens.read_access(token)
    fresh = [
        tokens.issue_access(claims.user_id, claims.is_staff, claims.login, claims.token_version)
        for _ in range(50 + REQUESTS * ROUNDS)
    ]
    resolve = container.resolve_principal()
    return {
        "token: PyJWT verify (first sight)": lambda i: tokens.read_access(fresh.pop()),
        "token: verified before (remembered)": lambda i: tokens.read_access(token),
        "caller: token + user check (per request)": lambda i: resolve(token),
    }


@contextmanager
def profiled(name: str, out: Any) -> Iterator[None]:
    if name != PROFILE:
        yield
        return
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    yield
    profile.disable()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(os.environ.get("CPU_SORT", "cumulative")).print_stats(60)
    callers = os.environ.get("CPU_CALLERS")  # a pattern: who calls the functions it matches
    if callers:
        stats.print_callers(callers)


def wanted(name: str) -> bool:
    if PROFILE:
        return name == PROFILE
    return not ONLY or any(word in name for word in ONLY)


def feed_end(client: FlaskClient, auth: dict[str, str]) -> str:
    """The cursor after the caller's last event, as a poller reaches it: reading on until
    nothing new comes."""
    after: str | None = None
    while True:
        query = {"limit": 100, **({"after": after} if after else {})}
        answer = client.get("/api/v1/me/events/", query_string=query, headers=auth).get_json()
        if not answer["results"]:
            return str(answer["next_after"])
        after = answer["next_after"]


def measure_all(service: Flask, bare: Flask, out: Any) -> None:
    client, bare_client = service.test_client(), bare.test_client()
    switch = events_off.switch_of(service)
    login = client.post("/api/token/", json={"username": "customer01", "password": PASSWORD})
    token = login.get_json()["access"]
    auth = {"Authorization": f"Bearer {token}"}
    for i in range(20):  # a full first page of 2-line orders in the history
        client.post("/api/v1/orders/", json=order_body(2, i), headers=auth)
    order_id = client.get("/api/v1/orders/", headers=auth).get_json()["results"][0]["id"]
    places: dict[str, Any] = {"order_id": order_id}
    by_name = {row.name: row for row in ROWS}
    header = f"{'request':<44} {'service CPU ms':>14} {'bare CPU ms':>12}  measured in turn with"
    print(header, file=out, flush=True)
    for row in ROWS:
        if not wanted(row.name):
            continue
        if "{feed_end}" in row.path:
            places["feed_end"] = feed_end(client, auth)  # after the orders of the rows above
        ours_call = http_call(client, row, token, places, switch)
        note = ""
        with profiled(row.name, out):
            if row.versus and not PROFILE:
                versus = http_call(client, by_name[row.versus], token, places, switch)
                (ours, theirs_ms), ratio = in_turn_ms([ours_call, versus])
                note = f"{row.versus}: {theirs_ms:.3f} ms; this row costs {ratio:.2f}x"
            else:
                ours = per_call_ms(ours_call)
        theirs = per_call_ms(http_call(bare_client, row, token, places)) if row.bare else None
        bare_text = "" if theirs is None else f"{theirs:.3f}"
        print(f"{row.name:<44} {ours:>14.3f} {bare_text:>12}  {note}", file=out, flush=True)
    for name, call in token_calls(service, token).items():
        if wanted(name):
            with profiled(name, out):
                print(f"{name:<44} {per_call_ms(call):>14.4f}", file=out, flush=True)


def main() -> int:
    from opply.entrypoints.config import Settings

    knobs = from_environment(sys.argv[1:])
    secret = secrets.token_urlsafe(48)
    with throwaway_database(knobs.admin_url) as database_url:
        engine = migrated_engine(database_url)
        load(engine)
        engine.dispose()
        settings = Settings(
            database_url=database_url, secret_key=secret, env="production", log_level="INFO"
        )
        # The service, on a unit of work whose events the rows switch (on but for one row).
        service = events_off.create_app(settings, events=True)
        bare = bare_app.create_app(database_url, secret)
        out = sys.stdout
        # The JSON request log is written (its cost counts) to /dev/null instead of the terminal.
        with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
            measure_all(service, bare, out)
        service.extensions["container"].engine().dispose()
        service.extensions["container"].read_engine().dispose()
        for bare_engine in bare_app.engines(bare):
            bare_engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
