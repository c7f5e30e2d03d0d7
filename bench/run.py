"""`make bench`: the service under load beside the bare app and the limit the database sets.

Creates a throwaway PostgreSQL database, migrates it, loads the catalogue and the customers
(``dataset.py``), serves the service and the bare reference app (``bare_app.py``) with gunicorn
alike (and, for its own scenario only, the service with order events off, ``events_off.py``),
and runs each scenario of ``scenarios.py`` in order: wrk against the service (and the
bare app where the scenario says so), pgbench on the same SQL (the ceiling), and one request
in-process to count its statements and compare both apps'. Prints one table and the goals,
drops the database, and exits non-zero on an error answer or unbalanced books.

``--quick`` (or BENCH_QUICK=1) checks that everything works in about two minutes; its
figures mean nothing. BENCH_TARGET=stack measures a running `make stack-up` instead
(``against_stack.py``). Other settings: see ``knobs.py`` and docs/performance.md.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

import ceilings
import dashboard
from dataset import (
    BIG_CATALOGUE,
    CUSTOMERS,
    HISTORY_CUSTOMERS,
    PASSWORD,
    PRODUCTS,
    books_balance,
    customer_names,
    grow_catalogue,
    load,
    migrated_engine,
    throwaway_database,
    vacuum,
)
from knobs import Knobs, from_environment, say
from report import Row, Run, goals, load_average, machine, table
from scenarios import EVENTS, GOALS, LIST, ORDERS, SCENARIOS, Ceiling, Scenario
from servers import BARE_APP, EVENTS_OFF_APP, SERVICE_APP, Server, http, log_in, rss_mb, start
from sqltrace import Probes, order_body
from tools import pgbench, pgbench_in_turn, pgbench_path, wrk, wrk_path


@dataclass
class Bench:
    """A run's fixed parts: its settings, servers, in-process probes and files."""

    knobs: Knobs
    database_url: str
    service: Server
    bare: Server
    probes: Probes
    engine: Engine
    workdir: Path
    placeholders: dict[str, str]
    customer_ids: dict[str, int]
    secret_key: str

    @contextmanager
    def server(self, scenario: Scenario) -> Iterator[Server]:
        """The server of ``scenario``. The service with events off runs only for its load: its
        workers' connections would otherwise count against PostgreSQL's max_connections
        while pgbench's clients run (the machine's other users hold many of them)."""
        if scenario.server == "service":
            yield self.service
            return
        args = (self.database_url, self.secret_key, self.workdir)
        server = start(self.knobs, scenario.server, EVENTS_OFF_APP, *args)
        try:
            yield server
        finally:
            server.stop()

    def ceiling(self, ceiling: Ceiling) -> float:
        return pgbench(self.knobs, self.database_url, self.script(ceiling), self.variables(ceiling))

    def in_turn_cost(self, ceiling: Ceiling, other: Ceiling) -> float:
        """``other``'s transaction cost against ``ceiling``'s, both in one pgbench run."""
        scripts = [self.script(ceiling), self.script(other)]
        say(f"pgbench {scripts[0].name} and {scripts[1].name} in turn")
        own, theirs = pgbench_in_turn(
            self.knobs, self.database_url, scripts, self.variables(ceiling)
        )
        return theirs / own

    def script(self, ceiling: Ceiling) -> Path:
        return ceilings.write(script_name(ceiling), ceiling_script(ceiling), self.workdir)

    def variables(self, ceiling: Ceiling) -> dict[str, int]:
        variables = {"first_id": 1, "count": PRODUCTS, "offset": ceiling.offset}
        customers = [self.customer_ids[name] for name in customer_names()]
        variables.update(customers_from=min(customers), customers_to=max(customers))
        return variables

    def load(self, server: Server, scenario: Scenario) -> Row:
        args = [arg.format(**self.placeholders) for arg in scenario.wrk]
        profile = None
        if self.knobs.profile_dir:
            self.knobs.profile_dir.mkdir(parents=True, exist_ok=True)
            target = self.knobs.profile_dir / f"{server.name}-{scenario.key}.txt"
            profile = (target, server.worker_pids()[0])
        say(f"{scenario.name}, {server.name}: {self.knobs.warmup} s + {self.knobs.seconds} s")
        return Row(scenario, wrk(self.knobs, server.base, args, profile))


def script_name(ceiling: Ceiling) -> str:
    return f"{ceiling.script}{ceiling.lines or ''}{'' if ceiling.events else '-no-events'}"


def ceiling_script(ceiling: Ceiling) -> str:
    if ceiling.script == "list":
        return ceilings.list_page(ceiling.offset)
    if ceiling.script == "detail":
        return ceilings.product_detail()
    if ceiling.script == "history":
        return ceilings.history_page()
    return ceilings.place_order(ceiling.lines, events=ceiling.events)


def measure(bench: Bench, scenario: Scenario) -> Row:
    if scenario.in_process:
        load, statements, note = dashboard.measure(
            bench.knobs, bench.database_url, bench.secret_key
        )
        return Row(scenario, load, statements=statements, note=note)
    with bench.server(scenario) as server:
        row = bench.load(server, scenario)
    if scenario.bare:
        row.bare = bench.load(bench.bare, scenario).service
    if scenario.ceiling:
        row.ceiling = bench.ceiling(scenario.ceiling)
        if scenario.ceiling_in_turn:
            row.in_turn_cost = bench.in_turn_cost(scenario.ceiling, scenario.ceiling_in_turn)
            own, other = (script_name(c) for c in (scenario.ceiling, scenario.ceiling_in_turn))
            row.note = f"pgbench in turn: {other} costs {row.in_turn_cost:.2f}x {own}"
    if scenario.probe:
        path = scenario.probe.path.format(**bench.placeholders)
        probe = dataclasses.replace(scenario.probe, path=path)
        row.statements, row.sql_difference = bench.probes(probe, compare=scenario.bare)
    row.note = row.note or scenario.note
    if scenario.expect == "3xx":
        row.note = f"{row.service.statuses['3xx']} of {row.service.requests} answers were 304"
    return row


def prepare(service: Server, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Log every customer in and write the files wrk reads: the placeholders of the scenarios'
    wrk arguments, and every customer's token."""
    say(f"logging {CUSTOMERS} customers in")
    tokens = {name: log_in(service.base, name) for name in [*customer_names(), *HISTORY_CUSTOMERS]}
    files = {}
    for name, lines in (
        ("tokens", [tokens[name] for name in customer_names()]),
        ("users", customer_names()),
        *((who, [tokens[who]]) for who in HISTORY_CUSTOMERS),
    ):
        files[name] = workdir / f"{name}.txt"
        files[name].write_text("\n".join(lines) + "\n")
    _, headers, _ = http(service.base, "GET", LIST)
    placeholders = {
        **{name: str(path) for name, path in files.items()},
        "password": PASSWORD,
        "first_id": "1",
        "count": str(PRODUCTS),
        "etag": headers.get("ETag", ""),
    }
    return placeholders, tokens


def step_before(bench: Bench, scenario: Scenario) -> None:
    if scenario.before == "vacuum":
        say("VACUUM ANALYZE after the orders")
        vacuum(bench.engine)
    elif scenario.before == "grow":
        say(f"the catalogue grows to {BIG_CATALOGUE:,} products")
        grow_catalogue(bench.engine)
    elif scenario.before == "orders":
        say(f"the orders grow to {dashboard.ORDERS:,}, not analysed")
        dashboard.grow_orders(bench.engine)
    elif scenario.before == "feed":
        prepare_feed(bench)


def prepare_feed(bench: Bench) -> None:
    """Every customer with at least a full page of events (the orders above normally wrote
    them; the service places the missing orders otherwise), and ``{feed_end}``: the cursor
    after the last event. Checks what the feed scenarios' notes say on customer01."""
    from opply.application.dto import FeedPosition
    from opply.application.events import DEFAULT_FEED_LIMIT, cursor_of

    tokens = bench.probes.tokens
    with bench.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT customer_id, count(*) FROM order_events GROUP BY customer_id")
        )
        have = {int(customer): int(count) for customer, count in rows}
    placed = 0
    for name in customer_names():
        for i in range(DEFAULT_FEED_LIMIT - have.get(bench.customer_ids[name], 0)):
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            status, _, answer = http(bench.service.base, "POST", ORDERS, order_body(2, i), headers)
            if status != 201:
                raise SystemExit(f"an order of {name} for the feed: {status} {answer}")
            placed += 1
    with bench.engine.connect() as conn:
        last = conn.execute(
            text("SELECT tx_id, id FROM order_events ORDER BY tx_id DESC, id DESC LIMIT 1")
        ).one()
    bench.placeholders["feed_end"] = cursor_of(FeedPosition(tx=int(last.tx_id), id=int(last.id)))
    auth = {"Authorization": f"Bearer {tokens['customer01']}"}
    for path, expected in ((f"{EVENTS}?after={bench.placeholders['feed_end']}", 0), (EVENTS, 50)):
        status, _, answer = http(bench.service.base, "GET", path, headers=auth)
        if status != 200 or len(answer["results"]) != expected:
            raise SystemExit(f"GET {path}: {status}, not {expected} events: {answer}")
    say(f"the feed: {placed} orders placed for it; every customer has a page of events")


def run_scenarios(bench: Bench) -> list[Row]:
    rows = []
    chosen = [s for s in SCENARIOS if bench.knobs.runs(s.key)]
    for index, scenario in enumerate(SCENARIOS):
        if scenario.before and any(s in chosen for s in SCENARIOS[index:]):
            step_before(bench, scenario)
        if scenario in chosen:
            rows.append(measure(bench, scenario))
    return rows


def bench_local(knobs: Knobs) -> Run:
    run = Run()
    workdir = Path(tempfile.mkdtemp(prefix="opply-bench-"))
    secret = secrets.token_urlsafe(48)
    with throwaway_database(knobs.admin_url) as url:
        engine = migrated_engine(url)
        ids = load(engine)
        say(f"loaded {PRODUCTS} products, {CUSTOMERS} customers and the history customers")
        with ExitStack() as on_exit:
            service = start(knobs, "service", SERVICE_APP, url, secret, workdir)
            on_exit.callback(service.stop)
            bare = start(knobs, "bare", BARE_APP, url, secret, workdir)
            on_exit.callback(bare.stop)
            placeholders, tokens = prepare(service, workdir)
            probes = Probes(url, secret, tokens)
            on_exit.callback(probes.close)
            bench = Bench(
                knobs=knobs,
                database_url=url,
                service=service,
                bare=bare,
                probes=probes,
                engine=engine,
                workdir=workdir,
                placeholders=placeholders,
                customer_ids=ids,
                secret_key=secret,
            )
            run.rows = run_scenarios(bench)
            run.rss_mb = [rss_mb(pid) for pid in service.worker_pids()]
        run.books_balance, run.units_sold = books_balance(engine)
        engine.dispose()
    say(f"server logs in {workdir}")
    return run


def main(argv: list[str]) -> int:
    knobs = from_environment(argv)
    if knobs.target == "stack":
        import against_stack

        return against_stack.main(knobs)
    started = time.monotonic()
    wrk_path()
    pgbench_path()
    before = machine()
    say(before)
    run = bench_local(knobs)
    print(table(run.rows))
    print()
    print(f"Machine: {before}")
    print(f"Load average after the run: {load_average()}")
    print(
        f"Workers: {knobs.workers} {knobs.worker_class} x {knobs.threads} threads (service and"
        f" bare app alike); wrk: 2 threads, {knobs.connections} connections, {knobs.seconds} s"
        f"{' (--quick: figures mean nothing)' if knobs.quick else ''}"
    )
    print("Worker RSS after the run (MB): " + ", ".join(f"{v:.0f}" for v in sorted(run.rss_mb)))
    print()
    print(goals(run, GOALS))
    print()
    say(f"done in {time.monotonic() - started:.0f} s")
    failures = [r.scenario.name for r in run.rows if r.unexpected]
    if not run.books_balance:
        failures.append("the stock books do not balance")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
