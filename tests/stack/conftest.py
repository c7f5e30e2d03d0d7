"""The stack's black-box tests: they talk to the service the way its users and operators do,
through HTTP on HAProxy's port, the ``opply`` command, SQL, and HAProxy's runtime API.

They need the stack running (``make stack-up``); without it they are skipped, or fail under
``make stack-test`` (``STACK_REQUIRED=1``). Each run names its users and products after a run id,
so runs may follow each other on the same database. Figures (counts, timings, PgBouncer's pool
peaks) are printed at the end and written to ``.stack/figures/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from stack.stack import Database, haproxy_stats, http_status
from tests.stack.client import LB_PORT, PASSWORD, Client

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE = REPO_ROOT / ".stack"
FIGURES_DIR = STATE / "figures"
STACK_SCRIPT = REPO_ROOT / "stack" / "stack.py"
OPPLY = Path(sys.executable).parent / "opply"
TESTS_APPLICATION_NAME = "opply-stack-tests"  # the tests' own connection, not counted in peaks

_figures: dict[str, dict[str, Any]] = {}


def stack_database() -> Database:
    return Database.from_url(
        os.environ.get("STACK_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/stack"
    )


@pytest.fixture(scope="session", autouse=True)
def stack_running() -> None:
    if http_status(LB_PORT, "/readyz") == 200:
        return
    message = f"the stack does not answer on 127.0.0.1:{LB_PORT} (make stack-up; make stack-test)"
    if os.environ.get("STACK_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def run_stack(command: str, timeout: float = 180.0) -> str:
    """``stack/stack.py <command>`` as ``make stack-<command>`` runs it; its output."""
    result = subprocess.run(
        [sys.executable, str(STACK_SCRIPT), command],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- figures ------------------------------------------------------------------------------------


def record_figures(name: str, values: dict[str, Any]) -> None:
    """Keep ``values`` for the end-of-run summary and in ``.stack/figures/<name>.json``."""
    _figures[name] = values
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    stamped = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **values}
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(stamped, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures:
        return
    terminalreporter.section("stack figures (also in .stack/figures/)")
    for name, values in _figures.items():
        terminalreporter.write_line(f"{name}:")
        for key, value in values.items():
            terminalreporter.write_line(f"    {key}: {value}")


# --- SQL, the CLI and HAProxy -------------------------------------------------------------------


@pytest.fixture(scope="session")
def sql() -> Iterator[Any]:
    """A connection straight to the stack's database (not through PgBouncer), in autocommit:
    what an operator's psql would see."""
    db = stack_database()
    connection = psycopg2.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password or None,
        dbname=db.name,
        application_name=TESTS_APPLICATION_NAME,
    )
    connection.autocommit = True
    yield connection
    connection.close()


def query(connection: Any, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())


def opply(*args: str) -> str:
    """The ``opply`` command against the stack's database, as an operator runs it."""
    db = stack_database()
    env = {
        "PATH": f"{OPPLY.parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OPPLY_ENV": "production",
        "SECRET_KEY": (STATE / "secret_key").read_text().strip(),
        "SELLER_NAME": "Opply Stack GmbH",  # production refuses to start without the seller
        "SELLER_ADDRESS": "Musterstraße 1\\n10115 Berlin",
        "SELLER_VAT_ID": "DE000000000",
        "DATABASE_URL": db.sqlalchemy_url(),
        "PYTHON_DOTENV_DISABLED": "1",
    }
    result = subprocess.run(
        [str(OPPLY), *args], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def backend_counters() -> dict[str, dict[str, int]]:
    """HAProxy's retry, redispatch and error counters, per instance and for the backend."""
    return {
        server: {k: int(row.get(k) or 0) for k in ("wretr", "wredis", "econ", "eresp")}
        for server, row in haproxy_stats().items()
    }


def wait_for_status(server: str, prefix: str, timeout: float) -> float | None:
    """The moment (``time.monotonic()``) HAProxy first reports ``server``'s status starting with
    ``prefix``, polled every 50 ms; None if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if haproxy_stats().get(server, {}).get("status", "").startswith(prefix):
            return time.monotonic()
        time.sleep(0.05)
    return None


# --- accounts -----------------------------------------------------------------------------------


@dataclass
class Accounts:
    run: str
    staff: Client
    customers: list[tuple[str, Client]]  # username, logged-in client
    spare: list[str] = field(default_factory=list)  # created, not logged in

    def product(self, stock: int, price: str = "2.50") -> dict[str, Any]:
        answer = self.staff.post(
            "/api/v1/products/",
            {
                "name": f"{self.run} product {uuid.uuid4().hex[:6]}",
                "price": price,
                "quantity_in_stock": stock,
            },
        )
        assert answer.status == 201, (answer.status, answer.body)
        product: dict[str, Any] = answer.body
        return product


CUSTOMERS = 8
SPARE = 2


@pytest.fixture(scope="session")
def run_id() -> str:
    return f"st{time.strftime('%H%M%S')}{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="session")
def accounts(run_id: str) -> Accounts:
    """A staff user and customers of this run, made with the CLI; the customers are logged in,
    each from an address of its own."""
    names = [f"{run_id}-c{i}" for i in range(CUSTOMERS + SPARE)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        staff_made = pool.submit(
            opply, "users", "create", f"{run_id}-staff", "--staff", "--password", PASSWORD
        )
        list(pool.map(lambda n: opply("users", "create", n, "--password", PASSWORD), names))
        staff_made.result()
    staff = Client()
    staff.login(f"{run_id}-staff")
    customers = []
    for name in names[:CUSTOMERS]:
        client = Client()
        client.login(name)
        customers.append((name, client))
    return Accounts(run=run_id, staff=staff, customers=customers, spare=names[CUSTOMERS:])


# --- PgBouncer's pools, sampled while the tests run ---------------------------------------------

POOL_COLUMNS = ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait")


@pytest.fixture(scope="session", autouse=True)
def pgbouncer_peaks(stack_running: None) -> Iterator[None]:
    """Peaks of PgBouncer's ``SHOW POOLS`` for the stack's database, and of the server
    connections PostgreSQL itself counts, sampled every 0.2 s: the connection budget's data."""
    db = stack_database()
    peaks: dict[str, int] = dict.fromkeys((*POOL_COLUMNS, "clients", "servers", "pg_backends"), 0)
    samples = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal samples
        admin = psycopg2.connect(host="127.0.0.1", port=6432, user=db.user, dbname="pgbouncer")
        admin.autocommit = True
        direct = psycopg2.connect(  # to another database, so as not to count itself
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password or None,
            dbname="postgres",
        )
        direct.autocommit = True
        try:
            while not done.wait(0.2):
                with admin.cursor() as cursor:
                    cursor.execute("SHOW POOLS")
                    names = [c[0] for c in cursor.description or ()]
                    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
                for row in rows:
                    if row["database"] != db.name:
                        continue
                    for column in POOL_COLUMNS:
                        peaks[column] = max(peaks[column], int(row[column]))
                    clients = int(row["cl_active"]) + int(row["cl_waiting"])
                    servers = sum(int(row[c]) for c in ("sv_active", "sv_idle", "sv_used"))
                    peaks["clients"] = max(peaks["clients"], clients)
                    peaks["servers"] = max(peaks["servers"], servers)
                (backends,) = query(
                    direct,
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name <> %s",
                    db.name,
                    TESTS_APPLICATION_NAME,
                )[0]
                peaks["pg_backends"] = max(peaks["pg_backends"], int(backends))
                samples += 1
        finally:
            admin.close()
            direct.close()

    thread = threading.Thread(target=sample, name="pgbouncer-sampler", daemon=True)
    thread.start()
    yield
    done.set()
    thread.join(timeout=5)
    record_figures("pgbouncer_pool_peaks", {"samples": samples, **peaks})
