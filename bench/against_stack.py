"""BENCH_TARGET=stack: the running `make stack-up` stack, one instance against the whole.

The stack is HAProxy on 127.0.0.1:8080 in front of two instances (:8001, :8002) whose database
is reached through PgBouncer on :6432 (transaction pooling), database ``stack``
(STACK_DATABASE_URL names another). For each scenario marked ``stack`` in ``scenarios.py`` this
measures one instance on its own port, then both through HAProxy, with the same wrk load; then
the pooler's own cost: the pgbench ceiling of the same SQL straight to PostgreSQL and through
PgBouncer.

The bench adds its own customers (``bench-customer01``...) and products (SKUs ``BENCH-...``,
their stock topped up on every run) to the stack's database, and leaves them there.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

import ceilings
from dataset import INITIAL_STOCK, PASSWORD, PRODUCTS
from knobs import Knobs, say
from report import load_average, machine
from scenarios import LIST, SCENARIOS, Ceiling, Scenario
from servers import answers, http, log_in
from tools import Load, pgbench, pgbench_path, wrk, wrk_path

BALANCER = "http://127.0.0.1:8080"
INSTANCE = "http://127.0.0.1:8001"
POOLER_PORT = 6432
DATABASE_URL = (
    make_url(os.environ.get("STACK_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/stack")
    .set(drivername="postgresql+psycopg2")  # the driver the project installs
    .render_as_string(hide_password=False)
)
CUSTOMERS = [f"bench-customer{i:02d}" for i in range(1, 11)]  # the login limits allow 10 a minute
SKU_PREFIX = "BENCH-"
NOT_RUNNING = (
    "BENCH_TARGET=stack measures the running stack, and none answers on "
    f"{BALANCER}/readyz: start it with `make stack-up` (stop it with `make stack-down`)."
)


@dataclass(frozen=True)
class StackData:
    first_product: int
    products: int
    customers: tuple[int, int]  # the bench customers' ids, first and last


def _contiguous(ids: list[int], what: str) -> tuple[int, int]:
    if not ids or max(ids) - min(ids) + 1 != len(ids):
        raise SystemExit(f"the bench's {what} in the stack's database do not have consecutive ids")
    return min(ids), max(ids)


def bench_data(engine: Engine) -> StackData:
    """The bench's customers and products in the stack's database, added the first time; the
    products' stock is topped up so that no run ends for want of it."""
    from opply.adapters.passwords import Argon2PasswordHasher

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, password_hash, is_staff, is_active, token_version) "
                "SELECT u, :h, false, true, 0 FROM unnest(CAST(:names AS text[])) AS u "
                "ON CONFLICT (username) DO NOTHING"
            ),
            {"names": CUSTOMERS, "h": Argon2PasswordHasher().hash(PASSWORD)},
        )
        conn.execute(
            text("UPDATE users SET is_active = true WHERE username = ANY(CAST(:names AS text[]))"),
            {"names": CUSTOMERS},
        )
        conn.execute(
            text(
                "INSERT INTO products (name, price, quantity_in_stock, sku, unit, description, "
                "vat_rate) SELECT 'Bench product ' || i, (i % 97) + 1.5, :stock, "
                ":prefix || lpad(i::text, 6, '0'), 'unit', 'For make bench', 7 "
                "FROM generate_series(1, :n) AS i WHERE NOT EXISTS "
                "(SELECT 1 FROM products WHERE sku LIKE :prefix || '%')"
            ),
            {"stock": INITIAL_STOCK, "prefix": SKU_PREFIX, "n": PRODUCTS},
        )
        conn.execute(
            text("UPDATE products SET quantity_in_stock = :stock WHERE sku LIKE :prefix || '%'"),
            {"stock": INITIAL_STOCK, "prefix": SKU_PREFIX},
        )
        products = list(
            conn.execute(
                text("SELECT id FROM products WHERE sku LIKE :prefix || '%'"),
                {"prefix": SKU_PREFIX},
            ).scalars()
        )
        customers = list(
            conn.execute(
                text("SELECT id FROM users WHERE username = ANY(CAST(:names AS text[]))"),
                {"names": CUSTOMERS},
            ).scalars()
        )
    first, last = _contiguous(products, "products")
    return StackData(first, last - first + 1, _contiguous(customers, "customers"))


@dataclass
class StackRow:
    scenario: Scenario
    direct: Load
    through: Load


def placeholders(data: StackData, workdir: Path) -> dict[str, str]:
    say(f"logging {len(CUSTOMERS)} bench customers in through {BALANCER}")
    tokens = workdir / "tokens.txt"
    tokens.write_text("\n".join(log_in(BALANCER, name) for name in CUSTOMERS) + "\n")
    _, headers, _ = http(BALANCER, "GET", LIST)
    return {
        "tokens": str(tokens),
        "first_id": str(data.first_product),
        "count": str(data.products),
        "etag": headers.get("ETag", ""),
        "password": PASSWORD,
    }


def pooler_cost(knobs: Knobs, data: StackData, workdir: Path) -> list[tuple[str, float, float]]:
    """(ceiling, straight to PostgreSQL, through PgBouncer) for the list page and a 2-line order."""
    direct = make_url(DATABASE_URL)
    pooled = direct.set(port=POOLER_PORT).render_as_string(hide_password=False)
    variables = {"first_id": data.first_product, "count": data.products, "offset": 0}
    variables.update(customers_from=data.customers[0], customers_to=data.customers[1])
    found = []
    for name, ceiling in (
        ("product list page 1", Ceiling(script="list")),
        ("place order, 2 lines", Ceiling(script="order", lines=2)),
    ):
        script = ceilings.write(f"stack-{ceiling.script}", _script(ceiling), workdir)
        say(f"pgbench {name}: PostgreSQL :{direct.port or 5432}, then PgBouncer :{POOLER_PORT}")
        straight = pgbench(knobs, DATABASE_URL, script, variables)
        found.append((name, straight, pgbench(knobs, pooled, script, variables)))
    return found


def _script(ceiling: Ceiling) -> str:
    if ceiling.script == "order":
        return ceilings.place_order(ceiling.lines)
    return ceilings.list_page(0)


def print_tables(rows: list[StackRow], pooler: list[tuple[str, float, float]]) -> None:
    header = (
        f"{'scenario':<28} {'1 instance req/s':>16} {'p99 ms':>7}"
        f" {'2 via HAProxy req/s':>19} {'p99 ms':>7} {'gain':>6} {'errors':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        gain = r.through.rps / r.direct.rps if r.direct.rps else 0.0
        errors = r.direct.unexpected(r.scenario.expect) + r.through.unexpected(r.scenario.expect)
        print(
            f"{r.scenario.name:<28} {r.direct.rps:>16.0f} {r.direct.p99_ms:>7.1f}"
            f" {r.through.rps:>19.0f} {r.through.p99_ms:>7.1f} {gain:>5.2f}x {errors:>6}"
        )
    header = f"{'pgbench ceiling':<28} {'PostgreSQL tps':>16} {'PgBouncer tps':>14} {'cost':>6}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, straight, pooled in pooler:
        cost = 1 - pooled / straight if straight else 0.0
        print(f"{name:<28} {straight:>16.0f} {pooled:>14.0f} {cost:>6.0%}")


def main(knobs: Knobs) -> int:
    if not answers(f"{BALANCER}/readyz"):
        print(NOT_RUNNING)
        return 2
    wrk_path()
    pgbench_path()
    say(machine())
    workdir = Path(tempfile.mkdtemp(prefix="opply-bench-stack-"))
    engine = create_engine(DATABASE_URL)
    try:
        data = bench_data(engine)
    finally:
        engine.dispose()
    values = placeholders(data, workdir)
    rows = []
    for scenario in SCENARIOS:
        if scenario.stack and knobs.runs(scenario.key):
            args = [arg.format(**values) for arg in scenario.wrk]
            say(f"{scenario.name}: {INSTANCE} alone, then {BALANCER}")
            rows.append(StackRow(scenario, wrk(knobs, INSTANCE, args), wrk(knobs, BALANCER, args)))
    pooler = pooler_cost(knobs, data, workdir)
    print_tables(rows, pooler)
    print(f"\nLoad average after the run: {load_average()}")
    quick = " (--quick: figures mean nothing)" if knobs.quick else ""
    print(
        f"wrk: 2 threads, {knobs.connections} connections, {knobs.seconds} s; pgbench: as many "
        f"clients, {knobs.ceiling_seconds} s{quick}"
    )
    failed = any(
        r.direct.unexpected(r.scenario.expect) or r.through.unexpected(r.scenario.expect)
        for r in rows
    )
    return 1 if failed else 0
