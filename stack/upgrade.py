"""``make stack-upgrade FROM=<git ref>``: a release replaces a running one, and nobody notices.

On the local stack (stack/stack.py, the same settings: ``STACK_DATABASE_URL`` and the rest):

1. The older release is unpacked from git (``git archive``) into ``.stack/releases/<commit>/``
   with a virtualenv of its own, made from its own ``requirements.lock`` (kept for the next run).
2. The stack starts on it: its ``opply db upgrade`` (unless the database is already past every
   migration it knows: then it runs on the newer schema, as after a rollback), PgBouncer, Redis,
   its two gunicorn instances, HAProxy.
3. Customers (users and products made by the older release's CLI and API) browse and place keyed
   orders through HAProxy, retrying a connection error or a 503 with the same Idempotency-Key,
   as docs/api.md tells clients to.
4. While the older release serves, this checkout's migrations run (``opply db upgrade``, straight
   to PostgreSQL): they must be additive, since the older code keeps reading and writing.
5. The instances restart onto this checkout one at a time (``stack.restart``: drain in HAProxy,
   graceful stop, start, ready, back in).
6. The customers stop; the figures are printed and kept in ``.stack/figures/upgrade.json``.

It fails (exit 1) when any request failed after its retries, when a key's order is missing or
doubled in the database, or when an instance does not answer as this checkout's release. The
stack is left running on this checkout (``make stack-down`` stops it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stack  # stack/stack.py: this script runs from its folder, as stack.py does
from stack import HOST, INSTANCES, LB_PORT, REPO, STATE, StackError, Started, say

RELEASES = STATE / "releases"
FIGURES = STATE / "figures" / "upgrade.json"
UPGRADE_FROM_FILE = REPO / "deploy" / "upgrade-from"  # the older release .ci/run upgrades from
CUSTOMERS = 6
PASSWORD = "a-long-upgrade-test-password"  # noqa: S105 - the throwaway customers' password
RETRY_FOR = 30.0  # seconds a client keeps retrying one request before it counts as failed
SETTLE = 3.0  # seconds of traffic before the migration, between the steps and after the roll
BEFORE_HEALTHZ_NAMED_IT = "(no commit in /healthz)"  # releases before /healthz said which


# --- the releases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A release of the service: its source tree and the virtualenv that runs it."""

    commit: str
    root: Path
    bin: Path

    def environment(self) -> dict[str, str]:
        """What a process of this release gets on top of the stack's settings."""
        return {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "OPPLY_GIT_COMMIT": self.commit,
        }


def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"git {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()


def resolve(ref: str) -> str:
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def this_checkout() -> Release:
    return Release(commit=resolve("HEAD"), root=REPO, bin=stack.BIN)


def _run_quietly(argv: list[str], what: str) -> None:
    """Run ``argv``; its output (pip's is long) is shown only when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"{what} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def unpack(ref: str) -> Release:
    """The release at ``ref``, unpacked and installed once into ``.stack/releases/<commit>/``."""
    commit = resolve(ref)
    root = RELEASES / commit
    venv = root / ".venv"
    release = Release(commit=commit, root=root, bin=venv / "bin")
    if (venv / ".installed").exists():
        say(f"release {ref} ({commit[:12]}) already unpacked in {root}")
        return release
    began = time.monotonic()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    )
    untar = subprocess.run(["tar", "-x", "-C", str(root)], stdin=archive.stdout, check=False)
    if archive.wait() != 0 or untar.returncode != 0:
        raise StackError(f"could not unpack {commit} into {root}")
    _run_quietly([sys.executable, "-m", "venv", str(venv)], f"a virtualenv for {commit[:12]}")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")
    lock = root / "requirements.lock"
    if lock.exists():  # the versions that release was tested with
        _run_quietly([*pip, "--requirement", str(lock)], f"{commit[:12]}'s requirements.lock")
        _run_quietly([*pip, "--no-deps", str(root)], f"installing {commit[:12]}")
    else:
        _run_quietly([*pip, str(root)], f"installing {commit[:12]}")
    (venv / ".installed").touch()
    say(f"release {ref} ({commit[:12]}) unpacked and installed in {time.monotonic() - began:.0f} s")
    return release


def known_revisions(release: Release) -> set[str]:
    """The Alembic revisions ``release`` ships, read from its migration files."""
    versions = release.root / "src" / "opply" / "adapters" / "migrations" / "versions"
    pattern = re.compile(r"""^revision\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.MULTILINE)
    return {m for path in versions.glob("*.py") for m in pattern.findall(path.read_text())}


def database_revision(db: stack.Database) -> str | None:
    import psycopg2

    connection = psycopg2.connect(
        host=db.host, port=db.port, user=db.user, password=db.password or None, dbname=db.name
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            row = cursor.fetchone()
            if not row or not row[0]:
                return None
            cursor.execute("SELECT version_num FROM alembic_version")
            found = cursor.fetchone()
            return str(found[0]) if found else None
    finally:
        connection.close()


def opply_of(release: Release, secret: str, db: stack.Database, *args: str) -> str:
    """``release``'s own ``opply`` command, straight to PostgreSQL (as stack.migrate runs it)."""
    env = {
        **stack.app_environment(secret, database_url=db.sqlalchemy_url()),
        **release.environment(),
    }
    result = subprocess.run(
        [str(release.bin / "opply"), *args],
        cwd=release.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise StackError(f"opply {' '.join(args)} ({release.commit[:12]}) failed:\n{result.stderr}")
    return result.stdout.strip()


# --- the stack on a given release -----------------------------------------------------------


def start_instance_of(
    release: Release, name: str, started: dict[str, Started], secret: str, db: stack.Database
) -> None:
    """stack.start_instance, with ``release``'s gunicorn, configuration file and code."""
    port = INSTANCES[name]
    stack.free_port(port, "gunicorn")
    env = {**stack.instance_environment(name, port, secret, db), **release.environment()}
    argv = [str(release.bin / "gunicorn"), "--config", "gunicorn.conf.py"]
    argv.append("opply.entrypoints.wsgi:app")
    started[name] = stack.launch(name, argv, env=env, cwd=release.root)
    stack.save_started(started)
    stack.wait_ready(name, started[name])


def up_on(release: Release) -> None:
    """stack.up with ``release`` in the instances: only what every release has (no extra
    processes a later release may add)."""
    stack.install_missing()
    STATE.mkdir(exist_ok=True)
    started = stack.load_started()
    running = [name for name, process in started.items() if process.alive()]
    if running:
        raise StackError(
            f"the stack is running ({', '.join(running)}): `make stack-down` first; "
            "stack-upgrade starts it on the older release itself"
        )
    ports = {"pgbouncer": (stack.PGBOUNCER_PORT, "pgbouncer"), "haproxy": (LB_PORT, "haproxy")}
    ports |= {name: (port, "gunicorn") for name, port in INSTANCES.items()}
    for port, service in ports.values():
        stack.free_port(port, service)
    db, secret = stack.database(), stack.secret_key()
    stack.create_database(db)
    revision = database_revision(db)
    if revision is None or revision in known_revisions(release):
        migrated = opply_of(release, secret, db, "db", "upgrade")
        say(f"migrating with {release.commit[:12]}: {migrated}")
    else:
        say(
            f"the database is at revision {revision}, which {release.commit[:12]} does not know "
            "(a newer release migrated it): it runs on the newer schema, as after a rollback"
        )
    stack.ensure_redis(started)
    stack.ensure_pgbouncer(db, started)
    for name in sorted(INSTANCES):
        start_instance_of(release, name, started, secret, db)
        say(f"{name} on http://{HOST}:{INSTANCES[name]} runs {release.commit[:12]}")
    stack.ensure_haproxy(started)
    if not stack._wait(lambda: stack.http_status(LB_PORT, "/readyz") == 200, 30.0, every=0.2):
        raise StackError(f"http://{HOST}:{LB_PORT}/readyz is not 200:\n{stack.log_tail('haproxy')}")
    for name in INSTANCES:
        stack.wait_server(name, lambda row: row.get("status") == "UP", 15.0)


# --- customers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, reset, closed)
    body: Any


_network = random.randrange(16, 250)  # 127.N.x.y: every customer has an address of its own


def request(
    method: str,
    path: str,
    *,
    address: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    port: int = LB_PORT,
) -> Answer:
    sent = {"Connection": "close", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(HOST, port, timeout=30, source_address=(address, 0))
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException):
        return Answer(status=None, body=None)
    finally:
        connection.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw[:200].decode(errors="replace")
    return Answer(status=response.status, body=parsed)


@dataclass
class Tally:
    """What the customers saw, added up across their threads."""

    requests: int = 0  # HTTP attempts
    retried: int = 0  # attempts answered by a dropped connection or a 503, then retried
    operations: Counter[str] = field(default_factory=Counter)  # by kind, once each
    failed: list[str] = field(default_factory=list)  # operations that never succeeded
    placed: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> its order's id
    releases: Counter[str] = field(default_factory=Counter)  # /healthz answers by commit
    lock: threading.Lock = field(default_factory=threading.Lock)


class Customer:
    def __init__(self, username: str, address: str, tally: Tally) -> None:
        self.username = username
        self.address = address
        self.tally = tally
        self.headers: dict[str, str] = {}

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        expected: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One operation: retried with the same request (and key) on a dropped connection or
        a 503 for up to RETRY_FOR seconds; its body, or None when it failed."""
        deadline = time.monotonic() + RETRY_FOR
        while True:
            answer = request(
                method,
                path,
                address=self.address,
                body=body,
                headers={**self.headers, **(headers or {})},
            )
            with self.tally.lock:
                self.tally.requests += 1
                if answer.status is None or answer.status == 503:
                    self.tally.retried += 1
                elif answer.status == expected:
                    self.tally.operations[kind] += 1
            if answer.status == expected:
                return answer.body
            if (answer.status is None or answer.status == 503) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            with self.tally.lock:
                self.tally.failed.append(f"{kind}: {method} {path}: {answer.status} {answer.body}")
            return None

    def login(self) -> None:
        tokens = self.call(
            "login",
            "POST",
            "/api/token/",
            200,
            body={"username": self.username, "password": PASSWORD},
        )
        if tokens is None:
            raise StackError(f"{self.username} could not log in: {self.tally.failed[-1:]}")
        self.headers = {"Authorization": f"Bearer {tokens['access']}"}

    def shop(self, products: list[int], stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            self.call("browse", "GET", "/api/v1/products/?page_size=20", 200)
            self.call("product", "GET", f"/api/v1/products/{rng.choice(products)}/", 200)
            health = self.call("healthz", "GET", "/healthz", 200)
            if isinstance(health, dict):
                with self.tally.lock:
                    self.tally.releases[health.get("commit", BEFORE_HEALTHZ_NAMED_IT)] += 1
            key = f"upgrade-{uuid.uuid4().hex}"
            chosen = rng.sample(products, 2)
            lines = [{"product_id": p, "quantity": rng.randint(1, 3)} for p in chosen]
            order = self.call(
                "order",
                "POST",
                "/api/v1/orders/",
                201,
                body={"lines": lines},
                headers={"Idempotency-Key": key},
            )
            if isinstance(order, dict):
                with self.tally.lock:
                    self.tally.placed[key] = int(order["id"])
            time.sleep(rng.uniform(0.05, 0.2))


@dataclass(frozen=True)
class Shop:
    run: str
    customers: list[Customer]
    products: list[int]


def open_shop(release: Release, tally: Tally) -> Shop:
    """Users made with ``release``'s CLI, products with its API, as its operators would."""
    db, secret = stack.database(), stack.secret_key()
    run = f"up{time.strftime('%H%M%S')}{uuid.uuid4().hex[:4]}"
    staff_name = f"{run}-staff"
    names = [f"{run}-c{i}" for i in range(CUSTOMERS)]

    def create(name: str, *flags: str) -> None:
        opply_of(release, secret, db, "users", "create", name, *flags, "--password", PASSWORD)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(create, names))
        pool.submit(create, staff_name, "--staff").result()
    staff = Customer(staff_name, f"127.{_network}.0.1", tally)
    staff.login()
    products = []
    for n in range(3):
        product = staff.call(
            "product setup",
            "POST",
            "/api/v1/products/",
            201,
            body={"name": f"{run} product {n}", "price": "3.20", "quantity_in_stock": 1_000_000},
        )
        if product is None:
            raise StackError(f"could not create products: {tally.failed[-1:]}")
        products.append(int(product["id"]))
    customers = [Customer(name, f"127.{_network}.1.{i + 1}", tally) for i, name in enumerate(names)]
    for customer in customers:
        customer.login()
    return Shop(run=run, customers=customers, products=products)


@contextmanager
def shopping(shop: Shop) -> Iterator[None]:
    stop = threading.Event()
    threads = [
        threading.Thread(target=c.shop, args=(shop.products, stop, n), name=c.username)
        for n, c in enumerate(shop.customers)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_FOR + 30)


def orders_in_database(run: str) -> list[int]:
    import psycopg2

    db = stack.database()
    connection = psycopg2.connect(
        host=db.host, port=db.port, user=db.user, password=db.password or None, dbname=db.name
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT o.id FROM orders o JOIN users u ON u.id = o.customer_id "
                "WHERE u.username LIKE %s",
                (f"{run}-c%",),
            )
            return [int(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()


# --- the upgrade ----------------------------------------------------------------------------


def upgrade(ref: str) -> None:
    began = time.monotonic()
    old, new = unpack(ref), this_checkout()
    say(f"upgrading from {ref} ({old.commit[:12]}) to this checkout ({new.commit[:12]})")
    up_on(old)
    say(f"the stack runs {old.commit[:12]} on http://{HOST}:{LB_PORT}")
    tally = Tally()
    shop = open_shop(old, tally)
    steps: dict[str, float] = {}
    with shopping(shop):
        time.sleep(SETTLE)
        db, secret = stack.database(), stack.secret_key()
        revision_before = database_revision(db)
        mark = time.monotonic()
        stack.migrate(db, secret)  # this checkout's migrations, while the old release serves
        steps["migration_seconds"] = round(time.monotonic() - mark, 1)
        revision_after = database_revision(db)
        time.sleep(SETTLE)
        mark = time.monotonic()
        stack.restart()  # one instance at a time onto this checkout
        steps["roll_seconds"] = round(time.monotonic() - mark, 1)
        time.sleep(SETTLE)
    answering = {
        name: request("GET", "/healthz", address=HOST, port=port).body
        for name, port in INSTANCES.items()
    }
    orders = orders_in_database(shop.run)
    placed = list(tally.placed.values())
    figures: dict[str, Any] = {
        "from": old.commit,
        "to": new.commit,
        "revision_before": revision_before,
        "revision_after": revision_after,
        "requests": tally.requests,
        "retried": tally.retried,
        "failed": len(tally.failed),
        "operations": dict(tally.operations),
        "keys_placed": len(placed),
        "orders_in_database": len(orders),
        "orders_missing": len(set(placed) - set(orders)),
        "orders_unasked": len(set(orders) - set(placed)),
        "orders_named_by_two_keys": len(placed) - len(set(placed)),
        "healthz_by_commit": dict(tally.releases),
        **steps,
        "seconds": round(time.monotonic() - began, 1),
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nstack-upgrade figures (also in {FIGURES}):", flush=True)
    for key, value in figures.items():
        print(f"    {key}: {value}", flush=True)
    problems = [
        f"failed {count} times: {line}" for line, count in Counter(tally.failed).most_common(5)
    ]
    if sorted(orders) != sorted(placed):
        problems.append(
            f"orders in the database {len(orders)} vs keys placed {len(placed)} "
            f"(missing {sorted(set(placed) - set(orders))[:10]}, "
            f"not asked for {sorted(set(orders) - set(placed))[:10]})"
        )
    for name, body in answering.items():
        commit = body.get("commit") if isinstance(body, dict) else None
        if commit != new.commit:
            problems.append(f"{name} answers /healthz with {body}, not as {new.commit[:12]}")
    if not placed:
        problems.append("no order was placed: the upgrade was not tried under traffic")
    if problems:
        raise StackError("the upgrade was noticed:\n  " + "\n  ".join(problems))
    say(
        f"upgraded from {old.commit[:12]} to {new.commit[:12]} under traffic: "
        f"{tally.requests} requests, {len(placed)} orders, 0 failed, "
        f"{tally.retried} retried; the stack now runs {new.commit[:12]}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "ref",
        nargs="?",
        default="",
        help=f"the older release (a git ref); default: the commit in {UPGRADE_FROM_FILE.name}",
    )
    args = parser.parse_args(argv)
    ref = args.ref.strip() or UPGRADE_FROM_FILE.read_text().strip()
    os.chdir(REPO)
    try:
        upgrade(ref)
    except StackError as error:
        print(f"stack: error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
