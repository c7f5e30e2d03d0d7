"""The database fails under load, and customers notice nothing worse than a 503 they retry.

Real gunicorn (4 workers, production settings) serves a PostgreSQL cluster this module starts
itself (``servers.throwaway_cluster``: it needs PostgreSQL's server binaries, not
TEST_DATABASE_URL, and is skipped without them). Customers place orders from several threads,
each order with its own Idempotency-Key, and retry the same key after a short pause on a 503 or
a dropped connection, as docs/api.md tells clients to, until it is placed (201) or definitely
refused (409 ``out_of_stock``). Meanwhile one fault, per test:

- every backend of the app's database is terminated (``pg_terminate_backend``) every second;
- gunicorn workers are killed with SIGKILL (the master starts new ones);
- the cluster is stopped (``pg_ctl stop -m fast``), kept down for 2.5 s and started again.

Then: no answer was a 5xx other than 503 ``database_unavailable`` problem+json with Retry-After;
a dropped connection to gunicorn only where workers were killed; every key placed exactly one
order (the one its 201 named) or none (its 409); every product's books balance; and ``/readyz``
answers 200 again, nothing restarted. Each test prints its figures, also kept in
``artifacts/database-faults.json``.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from opply.adapters.database import make_engine, make_read_engine
from opply.adapters.migrations import runner
from opply.adapters.orm import idempotency_keys, order_lines, orders, products
from opply.domain.model import OrderStatus
from tests.integration import factories as f
from tests.integration import servers
from tests.integration.conftest import Database, build_test_container
from tests.integration.servers import Cluster, child_pids, free_port, process_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES = REPO_ROOT / "artifacts" / "database-faults.json"
DATABASE = "opply"
WORKERS = 4
CUSTOMERS = 8
PLENTY, SCARCE = 100_000, 40  # four products never run out; one does, for some 409s
SCARCE_SHARE = 0.15  # of the orders ask for the scarce product too
KEY_DEADLINE = 30.0  # seconds a customer keeps retrying one key before the test gives up
HEAL_DEADLINE = 15.0  # seconds /readyz has to answer 200 again after the fault


# --- the servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with servers.throwaway_cluster() as cluster:
        admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()
        engine = make_engine(cluster.database_url(DATABASE))
        runner.upgrade(engine)
        engine.dispose()
        yield cluster


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    headers: dict[str, str]
    body: Any
    error: str | None = None

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class Gunicorn:
    port: int
    process: subprocess.Popen[bytes]
    logs: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        req = urllib.request.Request(  # noqa: S310 - a loopback http URL built by the test
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310
                return Answer(resp.status, dict(resp.headers), _parse(resp.read()))
        except urllib.error.HTTPError as err:
            return Answer(err.code, dict(err.headers), _parse(err.read()))
        except (OSError, http.client.HTTPException) as err:
            return Answer(None, {}, None, error=repr(err))

    def workers(self) -> list[int]:
        return child_pids(self.process.pid)

    def busy_workers(self) -> list[int]:
        """Workers holding a client's connection, i.e. in the middle of a request (a sync
        worker serves one at a time): its accepted socket is an ESTABLISHED one on our port."""
        accepted = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                _, local, _, state, *_, inode = line.split()[:10]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == self.port:
                    accepted.add(f"socket:[{inode}]")
        busy = []
        for pid in self.workers():
            fd_dir = Path(f"/proc/{pid}/fd")
            try:
                if any(os.readlink(fd) in accepted for fd in fd_dir.iterdir()):
                    busy.append(pid)
            except OSError:  # it just exited, or closed that descriptor
                continue
        return busy

    def log(self, tail: int = 6000) -> str:
        """gunicorn's own lines and the app's warnings and errors (not the INFO request lines)."""
        text = self.logs.read_text(errors="replace") if self.logs.exists() else ""
        notable = "\n".join(ln for ln in text.splitlines() if '"level": "INFO"' not in ln)
        return f"--- gunicorn, beyond INFO ---\n{notable[-tail:]}"


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")[:500]


@pytest.fixture(scope="module")
def gunicorn(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """One production-configured gunicorn for the module; every test starts from it serving
    with all its workers and a ready database."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = process_env(
        OPPLY_ENV="production",
        DATABASE_URL=cluster.database_url(DATABASE),
        SECRET_KEY=secrets.token_urlsafe(48),
        WEB_CONCURRENCY=str(WORKERS),
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        # Limits are not what this module tests, and production refuses per-process counters
        # with several workers; off is the deployment with limits enforced by a proxy in front.
        RATELIMIT_ENABLED="false",
    )
    logs = tmp / "gunicorn.log"
    with logs.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--config",
                str(REPO_ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "opply.entrypoints.wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Gunicorn(port, process, logs)
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _until(condition: Callable[[], bool], deadline: float) -> float | None:
    """Seconds until ``condition()`` held, polling, or None if it did not within ``deadline``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def _ready(server: Gunicorn) -> bool:
    return server.request("GET", "/readyz").status == 200


@pytest.fixture
def server(gunicorn: Gunicorn) -> Gunicorn:
    def serving() -> bool:
        if gunicorn.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {gunicorn.process.returncode}\n{gunicorn.log()}")
        return len(gunicorn.workers()) == WORKERS and _ready(gunicorn)

    if _until(serving, 30) is None:
        pytest.fail(f"gunicorn is not ready with {WORKERS} workers\n{gunicorn.log()}")
    return gunicorn


# --- the shop: customers and products of one test ---------------------------------------------


@dataclass
class Shop:
    customers: dict[int, dict[str, str]]  # customer id -> Authorization header
    stock: dict[int, int]  # product id -> units at the start


@pytest.fixture
def shop(cluster: Cluster, server: Gunicorn) -> Shop:
    url = cluster.database_url(DATABASE)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    database = Database(
        name="postgresql", url=url, engine=engine, read_engine=make_read_engine(engine)
    )
    container = build_test_container(database)
    try:
        stock = {f.product(container.uow(), stock=PLENTY).id: PLENTY for _ in range(4)}
        stock[f.product(container.uow(), stock=SCARCE).id] = SCARCE
        users = [f.user(container) for _ in range(CUSTOMERS)]
    finally:
        database.read_engine.dispose()
        engine.dispose()  # its connections must not be the faults' first victims
    customers = {}
    for user in users:
        answer = server.request(
            "POST", "/api/token/", {"username": user.username, "password": f.PASSWORD}
        )
        assert answer.status == 200, f"{answer}\n{server.log()}"
        customers[user.id] = {"Authorization": f"Bearer {answer.body['access']}"}
    return Shop(customers=customers, stock=stock)


# --- the traffic --------------------------------------------------------------------------------


@dataclass
class Attempt:
    at: float  # seconds since the traffic started
    status: int | None
    code: str | None
    retry_after: str | None
    content_type: str | None
    replayed: bool
    order_id: int | None
    error: str | None
    body: Any


@dataclass
class Key:
    key: str
    customer_id: int
    lines: dict[int, int]  # product id -> quantity
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and _is_final(last) else None


def _is_final(attempt: Attempt) -> bool:
    return attempt.status == 201 or (attempt.status == 409 and attempt.code == "out_of_stock")


def _retry(attempt: Attempt) -> bool:
    """What a well-behaved client retries with the same key: the service or the connection to
    it failed. (Any 5xx is retried so that the books can still be checked; the assertions
    then say which ones were not allowed.)"""
    return attempt.status is None or attempt.status >= 500


class Traffic:
    """``CUSTOMERS`` threads, one per customer, each placing keyed orders one after another."""

    def __init__(self, server: Gunicorn, shop: Shop, seed: int) -> None:
        self.server = server
        self.shop = shop
        self.stop = threading.Event()
        self.keys: list[Key] = []
        self._lock = threading.Lock()
        self._seed = seed
        self._threads: list[threading.Thread] = []
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Traffic:
        self.started = time.monotonic()
        for n, (customer_id, headers) in enumerate(self.shop.customers.items()):
            rng = random.Random(self._seed * 100 + n)
            thread = threading.Thread(target=self._customer, args=(customer_id, headers, rng))
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=KEY_DEADLINE + 20)
        self.seconds = time.monotonic() - self.started

    def _customer(self, customer_id: int, headers: dict[str, str], rng: random.Random) -> None:
        plenty = sorted(pid for pid, units in self.shop.stock.items() if units == PLENTY)
        scarce = sorted(pid for pid, units in self.shop.stock.items() if units == SCARCE)
        while not self.stop.is_set():
            chosen = rng.sample(plenty, rng.randint(1, 3))
            if rng.random() < SCARCE_SHARE:
                chosen += scarce
            key = Key(
                key=f"fault-{uuid.uuid4().hex}",
                customer_id=customer_id,
                lines={pid: rng.randint(1, 3) for pid in chosen},
            )
            with self._lock:
                self.keys.append(key)
            self._place(key, headers, rng)

    def _place(self, key: Key, headers: dict[str, str], rng: random.Random) -> None:
        body = f.order_body(*key.lines.items())
        deadline = time.monotonic() + KEY_DEADLINE
        while time.monotonic() < deadline:
            answer = self.server.request(
                "POST", "/api/v1/orders/", body, {**headers, "Idempotency-Key": key.key}
            )
            attempt = Attempt(
                at=round(time.monotonic() - self.started, 3),
                status=answer.status,
                code=answer.code,
                retry_after=answer.headers.get("Retry-After"),
                content_type=answer.headers.get("Content-Type"),
                replayed=answer.headers.get("Idempotent-Replayed") == "true",
                order_id=answer.body.get("id") if answer.status == 201 else None,
                error=answer.error,
                body=None if answer.status == 201 else answer.body,
            )
            key.attempts.append(attempt)
            if not _retry(attempt):
                return
            time.sleep(rng.uniform(0.05, 0.25))


# --- what the test checks and reports ----------------------------------------------------------


@dataclass
class Books:
    """What the database holds for one test's customers and products."""

    orders: dict[int, int]  # order id -> customer id
    keys: dict[tuple[int, str], int | None]  # (customer id, key) -> order id
    stock: dict[int, int]  # product id -> units now
    sold: dict[int, int]  # product id -> units in orders not cancelled


def _books(cluster: Cluster, shop: Shop) -> Books:
    # A connection of its own per look: the faults must not decide whether the test can read.
    engine = create_engine(cluster.database_url(DATABASE), poolclass=NullPool)
    customer_ids, product_ids = list(shop.customers), list(shop.stock)
    try:
        with engine.connect() as conn:
            return Books(
                orders=dict(
                    conn.execute(
                        select(orders.c.id, orders.c.customer_id).where(
                            orders.c.customer_id.in_(customer_ids)
                        )
                    ).all()
                ),
                keys={
                    (customer_id, key): order_id
                    for customer_id, key, order_id in conn.execute(
                        select(
                            idempotency_keys.c.customer_id,
                            idempotency_keys.c.key,
                            idempotency_keys.c.order_id,
                        ).where(idempotency_keys.c.customer_id.in_(customer_ids))
                    )
                },
                stock=dict(
                    conn.execute(
                        select(products.c.id, products.c.quantity_in_stock).where(
                            products.c.id.in_(product_ids)
                        )
                    ).all()
                ),
                sold={
                    pid: int(units)
                    for pid, units in conn.execute(
                        select(order_lines.c.product_id, func.sum(order_lines.c.quantity))
                        .join(orders, orders.c.id == order_lines.c.order_id)
                        .where(orders.c.status != OrderStatus.CANCELLED.value)
                        .where(order_lines.c.product_id.in_(product_ids))
                        .group_by(order_lines.c.product_id)
                    )
                },
            )
    finally:
        engine.dispose()


def _figures(name: str, traffic: Traffic, books: Books, **fault: Any) -> dict[str, Any]:
    attempts = [a for k in traffic.keys for a in k.attempts]
    statuses = Counter(a.status for a in attempts)
    finals = Counter(
        "placed" if k.final and k.final.status == 201 else "out_of_stock" if k.final else "open"
        for k in traffic.keys
    )
    figures = {
        "scenario": name,
        "traffic_seconds": round(traffic.seconds, 1),
        "requests": len(attempts),
        "keys": len(traffic.keys),
        "keys_placed": finals["placed"],
        "keys_out_of_stock": finals["out_of_stock"],
        "keys_unresolved": finals["open"],
        "answers_201": statuses[201],
        "replays": sum(1 for a in attempts if a.status == 201 and a.replayed),
        "answers_409": statuses[409],
        "answers_503": statuses[503],
        "answers_other_5xx": sum(n for s, n in statuses.items() if s is not None and s >= 500)
        - statuses[503],
        "connection_errors": statuses[None],
        "statuses": {str(s): n for s, n in sorted(statuses.items(), key=lambda i: i[0] or 0)},
        "orders_in_db": len(books.orders),
        "keys_with_order_in_db": sum(1 for order_id in books.keys.values() if order_id),
        **fault,
    }
    print(f"\n{name}: {json.dumps(figures)}")
    FIGURES.parent.mkdir(exist_ok=True)
    kept = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    kept[name] = figures
    FIGURES.write_text(json.dumps(kept, indent=2) + "\n")
    return figures


def _show(attempts: list[tuple[Key, Attempt]], limit: int = 5) -> str:
    return "\n".join(
        f"  key {k.key} (customer {k.customer_id}, lines {k.lines}) try {k.attempts.index(a) + 1} "
        f"at {a.at}s: {json.dumps(asdict(a), default=str)}"
        for k, a in attempts[:limit]
    )


def check(
    name: str,
    server: Gunicorn,
    cluster: Cluster,
    shop: Shop,
    traffic: Traffic,
    *,
    connection_errors_allowed: bool,
    **fault: Any,
) -> dict[str, Any]:
    """Every assertion of the module, on what the clients saw and what the database holds;
    the figures are kept before anything is asserted."""
    healed_in = _until(lambda: _ready(server), HEAL_DEADLINE)
    books = _books(cluster, shop)
    figures = _figures(
        name,
        traffic,
        books,
        readyz_healed_seconds=None if healed_in is None else round(healed_in, 1),
        **fault,
    )
    context = f"{json.dumps(figures)}\n{server.log()}"
    pairs = [(k, a) for k in traffic.keys for a in k.attempts]

    # What the clients saw.
    assert figures["answers_201"] > 0, f"nothing was ordered\n{context}"
    server_errors = [(k, a) for k, a in pairs if a.status is not None and a.status >= 500]
    not_503 = [(k, a) for k, a in server_errors if a.status != 503]
    assert not not_503, f"5xx other than 503:\n{_show(not_503)}\n{context}"
    bad_503 = [
        (k, a)
        for k, a in server_errors
        if a.code != "database_unavailable"
        or a.content_type != "application/problem+json"
        or not (a.retry_after or "").isdigit()
    ]
    assert not bad_503, f"503 without code, problem+json or Retry-After:\n{_show(bad_503)}"
    dropped = [(k, a) for k, a in pairs if a.status is None]
    if not connection_errors_allowed:
        assert not dropped, f"connections to gunicorn failed:\n{_show(dropped)}\n{context}"
    others = [
        (k, a) for k, a in pairs if a.status is not None and a.status < 500 and not _is_final(a)
    ]
    assert not others, f"answers a client cannot act on:\n{_show(others)}\n{context}"
    unresolved = [k for k in traffic.keys if k.final is None]
    assert not unresolved, (
        f"{len(unresolved)} keys never got 201 or 409 in {KEY_DEADLINE}s:\n"
        f"{_show([(k, k.attempts[-1]) for k in unresolved if k.attempts])}\n{context}"
    )

    # Every key: exactly the one order its 201 named, or none after its 409.
    placed = {
        (k.customer_id, k.key): k.final.order_id
        for k in traffic.keys
        if k.final is not None and k.final.status == 201
    }
    assert len(set(placed.values())) == len(placed), "two keys were answered with one order"
    assert sorted(books.orders) == sorted(placed.values()), (
        f"orders in the database {len(books.orders)} vs keys placed {len(placed)}; "
        f"not answered: {sorted(set(books.orders) - set(placed.values()))[:10]}, "
        f"missing: {sorted(set(placed.values()) - set(books.orders))[:10]}\n{context}"
    )
    kept = {key: order_id for key, order_id in books.keys.items() if order_id is not None}
    assert kept == placed, "the Idempotency-Key records do not match the orders the keys placed"
    for k in traffic.keys:
        orders_named = {a.order_id for a in k.attempts if a.status == 201}
        assert len(orders_named) <= 1, f"key {k.key} was answered with orders {orders_named}"

    # The books balance, and every unit sold is in an order some client was told about.
    for pid, initial in shop.stock.items():
        assert books.stock[pid] + books.sold.get(pid, 0) == initial, (
            f"product {pid}: {books.stock[pid]} in stock + {books.sold.get(pid, 0)} sold "
            f"!= {initial} at the start\n{context}"
        )
    told: dict[int, int] = defaultdict(int)
    for k in traffic.keys:
        if k.final is not None and k.final.status == 201:
            for pid, quantity in k.lines.items():
                told[pid] += quantity
    assert {pid: n for pid, n in books.sold.items() if n} == dict(told)

    # And the service is ready again, without a restart.
    assert healed_in is not None, f"/readyz did not answer 200 within {HEAL_DEADLINE}s\n{context}"
    return figures


# --- the faults ---------------------------------------------------------------------------------


def test_terminating_every_database_connection_every_second_costs_clients_at_most_a_503(
    cluster: Cluster, server: Gunicorn, shop: Shop
) -> None:
    terminated: list[int] = []
    killer = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname=DATABASE)
    killer.autocommit = True
    try:
        with Traffic(server, shop, seed=1) as traffic, killer.cursor() as cursor:
            for _ in range(7):
                time.sleep(1.0)
                cursor.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                row = cursor.fetchone()
                terminated.append(int(row[0]) if row else 0)
            time.sleep(1.5)  # traffic goes on after the last round: the pools must heal
    finally:
        killer.close()
    assert sum(terminated) > 0, terminated
    check(
        "terminate_backends",
        server,
        cluster,
        shop,
        traffic,
        connection_errors_allowed=False,
        backends_terminated=terminated,
    )


# A worker killed between COMMIT and its answer leaves an order the client never heard of: only
# its retry with the same key (a replay) tells it. Only workers busy with a request are killed,
# and often, so that some kills land there. On a busy machine a busy worker is found less often:
# the test then takes longer, and fails only when none is found for KILLS_DEADLINE seconds in all
# (the traffic stopped, or the workers never took a request).
KILLS, KILL_EVERY, KILLS_DEADLINE = 12, 0.5, 180.0


def test_killing_gunicorn_workers_mid_request_places_each_retried_order_once(
    cluster: Cluster, server: Gunicorn, shop: Shop
) -> None:
    rng = random.Random(2)
    killed: list[int] = []
    with Traffic(server, shop, seed=2) as traffic:
        deadline = time.monotonic() + KILLS_DEADLINE
        time.sleep(KILL_EVERY)
        while len(killed) < KILLS and time.monotonic() < deadline:
            busy = server.busy_workers()
            if not busy:
                time.sleep(0.02)
                continue
            victim = rng.choice(busy)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:  # it exited between the look and the kill: find another
                continue
            killed.append(victim)
            time.sleep(KILL_EVERY)
        killing_seconds = KILLS_DEADLINE - max(0.0, deadline - time.monotonic())
        respawned = _until(lambda: len(server.workers()) == WORKERS, 30)
        time.sleep(1.5)
    assert len(killed) == KILLS, (
        f"only {len(killed)} of {KILLS} kills found a busy worker in {KILLS_DEADLINE:.0f} s\n"
        f"{server.log()}"
    )
    assert respawned is not None, f"gunicorn did not get back to {WORKERS} workers\n{server.log()}"
    figures = check(
        "kill_workers",
        server,
        cluster,
        shop,
        traffic,
        connection_errors_allowed=True,
        workers_killed=len(killed),
        killing_seconds=round(killing_seconds, 1),
    )
    assert figures["connection_errors"] > 0, "no kill cut a request: the test saw no fault"


def test_stopping_and_starting_the_database_costs_clients_at_most_a_503(
    cluster: Cluster, server: Gunicorn, shop: Shop
) -> None:
    down = 2.5
    with Traffic(server, shop, seed=3) as traffic:
        time.sleep(1.5)
        stopping = time.monotonic()
        cluster.stop("fast")
        try:
            time.sleep(down / 2)
            while_down = server.request("GET", "/readyz")
            time.sleep(down / 2)
        finally:
            cluster.start()
        outage = time.monotonic() - stopping
        time.sleep(2.5)
    figures = check(
        "restart_database",
        server,
        cluster,
        shop,
        traffic,
        connection_errors_allowed=False,
        database_down_seconds=round(outage, 1),
    )
    assert while_down.status == 503, while_down
    assert while_down.code == "service_unavailable"
    assert figures["answers_503"] > 0, "no client noticed the outage: the test saw no fault"
