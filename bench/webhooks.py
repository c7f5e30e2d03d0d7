"""`make bench-webhooks`: one `opply worker` delivering to a local receiver that answers at once.

On a throwaway PostgreSQL database (TEST_DATABASE_URL's server, or BENCH_DATABASE_URL's):

* **throughput**: ``BACKLOG`` events already committed when the worker starts; events per second
  from its start to the receiver's last request (goal: at least 200);
* **latency**: orders placed at ``RATE`` per second for ``SECONDS`` while the worker runs; from
  each order's commit to the receiver's first byte of its webhook, p50 (goal: under 1 s) and p95.

Prints two rows and the goals; exits non-zero if an event was lost.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dataset import PASSWORD, migrated_engine, throwaway_database
from opply.adapters.clock import SystemClock
from opply.adapters.database import make_read_engine, make_session_factory
from opply.adapters.memory import FakePasswordHasher
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.adapters.sql_webhooks import SqlWebhookStore
from opply.adapters.webhook_http import UrlPolicy
from opply.application.dto import NewProduct, NewUser, PlaceOrderCommand
from opply.application.orders import PlaceOrder
from opply.application.products import CreateProduct
from opply.application.users import CreateUser
from opply.application.webhooks import CreateWebhookEndpoint
from opply.domain.model import LineRequest

QUICK = os.environ.get("BENCH_QUICK") == "1" or "--quick" in sys.argv
BACKLOG = 300 if QUICK else 3000
RATE, SECONDS = (20, 3) if QUICK else (50, 10)
CONCURRENCY = os.environ.get("WEBHOOK_CONCURRENCY", "8")
ROOT = Path(__file__).resolve().parents[1]


class Receiver:
    """Answers 204 at once; keeps when each event's request arrived (headers read)."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                at = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.requests += 1
                    receiver.arrived.setdefault(body["data"]["order"]["id"], at)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)


def worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "OPPLY_ENV": "development",
        "LOG_LEVEL": "WARNING",  # one line per attempt is the production default; not measured
        "WEBHOOK_CONCURRENCY": CONCURRENCY,
        "WEBHOOK_POLL_INTERVAL": "0.1",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "opply.entrypoints.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def wait_for(receiver: Receiver, count: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while receiver.count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"lost: {receiver.count()} of {count} events arrived")
        time.sleep(0.01)
    return time.monotonic()


def main() -> int:
    admin = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not admin:
        raise SystemExit("set TEST_DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server")
    with throwaway_database(admin) as url:
        engine = migrated_engine(url)
        uow = SqlUnitOfWork(make_read_engine(engine), make_session_factory(engine))
        clock = SystemClock()
        customer = CreateUser(uow, FakePasswordHasher())(
            NewUser(username="bench", password=PASSWORD, is_staff=False)
        ).id
        product = CreateProduct(uow)(
            NewProduct(name="Oats", price=Decimal("1.00"), quantity_in_stock=10_000_000)
        ).id
        receiver = Receiver()
        CreateWebhookEndpoint(
            SqlWebhookStore(engine), UrlPolicy(allow_http=True, allow_private=True), clock
        )(url=receiver.url, event_types=["order.placed"])
        # The parameter's name differs from the port's; it is called by position.
        place = PlaceOrder(uow, clock, "EUR")
        command = PlaceOrderCommand(
            customer_id=customer, lines=[LineRequest(product_id=product, quantity=1)]
        )
        for _ in range(BACKLOG):
            place(command)

        logs = Path(tempfile.mkdtemp(prefix="opply-bench-webhooks-"))
        process = worker(url, logs / "worker.log")
        started = time.monotonic()
        try:
            finished = wait_for(receiver, BACKLOG, timeout=120)
            per_second = BACKLOG / (finished - started)
            cpu_ms = cpu_seconds(process.pid) * 1000 / BACKLOG

            committed: dict[int, float] = {}
            for _ in range(RATE * SECONDS):
                tick = time.monotonic()
                order_id = place(command).order_id
                committed[order_id] = time.monotonic()
                time.sleep(max(0.0, 1 / RATE - (time.monotonic() - tick)))
            wait_for(receiver, BACKLOG + RATE * SECONDS, timeout=60)
        finally:
            stop(process)
        latencies = sorted(receiver.arrived[i] - committed[i] for i in committed)
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        engine.dispose()
    rows = [
        ("webhooks: one worker, receiver answers at once", "value", "goal"),
        (f"  backlog of {BACKLOG} events delivered, events/s", f"{per_second:.0f}", ">= 200"),
        ("  worker CPU per delivery, ms (start-up included)", f"{cpu_ms:.1f}", ""),
        ("  commit -> receiver first byte, p50 ms", f"{p50 * 1000:.0f}", "< 1000"),
        ("  commit -> receiver first byte, p95 ms", f"{p95 * 1000:.0f}", ""),
    ]
    for name, value, goal in rows:
        print(f"{name:<52} {value:>8}  {goal}")
    load = os.getloadavg()[0]
    print(f"  (WEBHOOK_CONCURRENCY={CONCURRENCY}, {receiver.requests} requests, load {load:.1f})")
    return 0 if receiver.requests >= BACKLOG + RATE * SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
