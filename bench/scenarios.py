"""What `make bench` measures and what it must reach: the scenarios and the goals, as data.

A scenario is one wrk load (``wrk.lua``'s arguments), the request the bench also runs
in-process to count (and compare) its SQL statements, the pgbench script of the same SQL (its
ceiling), and whether the bare app (``bare_app.py``) runs it too. They run in this order;
``before`` is a step on the database first. The placeholders in ``wrk`` are filled by the run:
``{tokens}`` and ``{users}`` (files of tokens and usernames), ``{password}``, ``{first_id}`` and
``{count}`` (the products orders pick from), ``{etag}``, ``{history10}`` and ``{history10k}``
(the history customers' token files), ``{feed_end}`` (a cursor of the event feed after its
last event, known once the ``feed`` step ran).

A scenario runs on the service, or on ``events-off``: the service with order events off
(``events_off.py``), for what the events cost; that one has no in-process probe (one service
app per process) and so no statement count.

A goal compares figures of the run: a scenario's rate as a share of its ceiling or of the bare
app's rate, its p99, the cost of one scenario against another (by their rates, or by their
ceilings' transactions run in turn), or a fact of the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dataset import BIG_CATALOGUE, PAGE_SIZE, PRODUCTS

Method = Literal["GET", "POST"]
Before = Literal["", "vacuum", "grow", "orders", "feed"]
Server = Literal["service", "events-off"]
CeilingScript = Literal["list", "detail", "history", "order"]
Check = Literal[
    "of_ceiling",
    "of_bare",
    "p99_below",
    "cost_at_most",
    "in_turn_cost_at_most",
    "same_statements",
    "rss_below",
    "no_errors",
    "books_balance",
    "bare_sends_same_sql",
]

LIST = "/api/v1/products/"
ORDERS = "/api/v1/orders/"
EVENTS = "/api/v1/me/events/"
DEEP_PAGE = int(PRODUCTS * 0.92) // PAGE_SIZE
BIG_DEEP_PAGE = int(BIG_CATALOGUE * 0.92) // PAGE_SIZE


@dataclass(frozen=True, kw_only=True)
class Probe:
    """The request counted in-process: as ``user`` (a bearer token) if given; a POST carries
    an order of ``order_lines`` lines and an Idempotency-Key, or ``login_as``'s credentials;
    ``etag`` sends If-None-Match with the page's current ETag."""

    method: Method = "GET"
    path: str
    user: str | None = None
    order_lines: int = 0
    login_as: str | None = None
    etag: bool = False


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    script: CeilingScript
    offset: int = 0  # list: the page's offset
    lines: int = 0  # order: its number of lines
    events: bool = True  # order: with its order.placed event (issue 18)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    key: str
    name: str
    wrk: tuple[str, ...]
    probe: Probe | None  # None: not counted (a scenario of events-off)
    ceiling: Ceiling | None = None
    # Another script run with the ceiling's in one pgbench run, transaction by transaction in
    # turn: the row gets the cost of that one's transaction against this one's.
    ceiling_in_turn: Ceiling | None = None
    bare: bool = False  # the bare app runs it too
    stack: bool = False  # BENCH_TARGET=stack runs it (direct vs through the stack)
    expect: Literal["2xx", "3xx"] = "2xx"
    before: Before = ""
    # Timed in-process call by call (dashboard.py), not loaded with wrk: a staff page's reads.
    in_process: bool = False
    server: Server = "service"
    note: str = ""  # printed beside its row


def _order(lines: int, *, bare: bool = False, stack: bool = False) -> Scenario:
    return Scenario(
        key=f"order{lines}",
        name=f"place order, {lines} line{'s' if lines > 1 else ''}",
        wrk=("order", "{tokens}", str(lines), "{first_id}", "{count}"),
        probe=Probe(method="POST", path=ORDERS, user="customer01", order_lines=lines),
        ceiling=Ceiling(script="order", lines=lines),
        bare=bare,
        stack=stack,
    )


def _list(
    key: str, name: str, page: int, *, before: Before = "", bare: bool = False, stack: bool = False
) -> Scenario:
    path = LIST if page == 1 else f"{LIST}?page={page}"
    return Scenario(
        key=key,
        name=name,
        wrk=("list", path),
        probe=Probe(path=path),
        ceiling=Ceiling(script="list", offset=(page - 1) * PAGE_SIZE),
        bare=bare,
        stack=stack,
        before=before,
    )


SCENARIOS: tuple[Scenario, ...] = (
    _list("list", "product list page 1", 1, bare=True, stack=True),
    _list("deep", f"product list page {DEEP_PAGE} (92%)", DEEP_PAGE),
    Scenario(
        key="detail",
        name="product detail",
        wrk=("detail", "{first_id}", "{count}"),
        probe=Probe(path=f"{LIST}7/"),
        ceiling=Ceiling(script="detail"),
        bare=True,
        stack=True,
    ),
    Scenario(
        key="revalidate",
        name="product list revalidation (304)",
        wrk=("revalidate", LIST, "{etag}"),
        probe=Probe(path=LIST, etag=True),
        expect="3xx",
    ),
    _order(2, bare=True, stack=True),
    # The same order on the service with events off (events_off.py), right after it: issue
    # 18's cost of an order's event, for the service and for the database's own ceiling.
    Scenario(
        key="order2off",
        name="place order, 2 lines, events off",
        wrk=("order", "{tokens}", "2", "{first_id}", "{count}"),
        probe=None,
        ceiling=Ceiling(script="order", lines=2, events=False),
        ceiling_in_turn=Ceiling(script="order", lines=2),
        server="events-off",
    ),
    Scenario(
        key="history",
        name="order history page 1",
        wrk=("history", "{tokens}", ORDERS),
        probe=Probe(path=ORDERS, user="customer01"),
        ceiling=Ceiling(script="history"),
        bare=True,
        stack=True,
    ),
    _order(1),
    _order(10),
    _order(50),
    # The order runs added several hundred thousand orders since the load's ANALYZE: refresh
    # the statistics, as autovacuum would on a live database, so the planner does not scan the
    # whole table for a customer it still believes owns all of it.
    Scenario(
        key="history10",
        name="order history, 10 orders",
        wrk=("history", "{history10}", ORDERS),
        probe=Probe(path=ORDERS, user="history10"),
        before="vacuum",
    ),
    Scenario(
        key="history10k",
        name="order history, 10,000 orders",
        wrk=("history", "{history10k}", ORDERS),
        probe=Probe(path=ORDERS, user="history10k"),
    ),
    # The feed (issue 18), once the orders above wrote their events: the ``feed`` step makes
    # sure every customer has at least a page of them and finds the cursor after the last one.
    # A poller that is up to date sends that cursor and gets nothing new (the steady state);
    # a first poll, without a cursor, gets the customer's first full page.
    Scenario(
        key="feed",
        name="event feed poll, up to date",
        wrk=("history", "{tokens}", f"{EVENTS}?after={{feed_end}}"),
        probe=Probe(path=f"{EVENTS}?after={{feed_end}}", user="customer01"),
        before="feed",
        note="0 events per answer",
    ),
    Scenario(
        key="feedfirst",
        name="event feed, first poll (50 events)",
        wrk=("history", "{tokens}", EVENTS),
        probe=Probe(path=EVENTS, user="customer01"),
        note="50 events per answer",
    ),
    Scenario(
        key="login",
        name="log in (argon2id, on purpose)",
        wrk=("login", "{users}", "{password}"),
        probe=Probe(method="POST", path="/api/token/", login_as="customer01"),
    ),
    _list("big", f"product list page 1, {BIG_CATALOGUE:,}", 1, before="grow"),
    _list("bigdeep", f"product list page {BIG_DEEP_PAGE}, {BIG_CATALOGUE:,}", BIG_DEEP_PAGE),
    # Orders grow to 100,000 without ANALYZE: the dashboard's plans must find their indexes.
    Scenario(
        key="dashboard",
        name="admin dashboard queries, 100,000 orders",
        wrk=(),
        probe=Probe(path="/admin/"),
        before="orders",
        in_process=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Goal:
    issue: str
    text: str
    check: Check
    scenario: str = ""
    versus: str = ""
    limit: float = 0.0


GOALS: tuple[Goal, ...] = (
    Goal(
        issue="12", text="list >= 75% of the bare app", check="of_bare", scenario="list", limit=0.75
    ),
    Goal(
        issue="12",
        text="order >= 75% of the bare app",
        check="of_bare",
        scenario="order2",
        limit=0.75,
    ),
    Goal(
        issue="7, 12",
        text="list >= 12% of its ceiling",
        check="of_ceiling",
        scenario="list",
        limit=0.12,
    ),
    Goal(
        issue="7, 12",
        text="order >= 20% of its ceiling",
        check="of_ceiling",
        scenario="order2",
        limit=0.20,
    ),
    Goal(issue="12", text="the bare app sends the service's SQL", check="bare_sends_same_sql"),
    Goal(issue="7", text="order p99 < 50 ms", check="p99_below", scenario="order2", limit=50),
    Goal(
        issue="7",
        text="order: same SQL statements for 1 and 50 lines",
        check="same_statements",
        scenario="order50",
        versus="order1",
    ),
    Goal(
        issue="7",
        text="order: 50 lines cost <= 3x one line",
        check="cost_at_most",
        scenario="order50",
        versus="order1",
        limit=3,
    ),
    Goal(
        issue="7",
        text="list page 1 at 100,000 <= 2x page 1 at 1,000",
        check="cost_at_most",
        scenario="big",
        versus="list",
        limit=2,
    ),
    Goal(
        issue="7",
        text="deep page <= 3x page 1 (1,000 products)",
        check="cost_at_most",
        scenario="deep",
        versus="list",
        limit=3,
    ),
    Goal(
        issue="7",
        text="deep page <= 3x page 1 (100,000 products)",
        check="cost_at_most",
        scenario="bigdeep",
        versus="big",
        limit=3,
    ),
    Goal(
        issue="7",
        text="history: constant statements per page",
        check="same_statements",
        scenario="history10k",
        versus="history10",
    ),
    Goal(
        issue="7",
        text="history 10,000 orders <= 2x 10 orders",
        check="cost_at_most",
        scenario="history10k",
        versus="history10",
        limit=2,
    ),
    Goal(
        issue="21",
        text="dashboard queries p99 < 50 ms at 100,000 orders",
        check="p99_below",
        scenario="dashboard",
        limit=50,
    ),
    Goal(
        issue="18",
        text="order with its event <= 1.10x without",
        check="cost_at_most",
        scenario="order2",
        versus="order2off",
        limit=1.10,
    ),
    Goal(
        issue="18",
        text="order with its event <= 1.10x without (its SQL, pgbench in turn)",
        check="in_turn_cost_at_most",
        scenario="order2off",
        limit=1.10,
    ),
    Goal(
        issue="18",
        text="feed poll (up to date) costs <= list page 1",
        check="cost_at_most",
        scenario="feed",
        versus="list",
        limit=1,
    ),
    Goal(issue="7", text="worker RSS < 100 MB", check="rss_below", limit=100),
    Goal(issue="7", text="no errors in any scenario", check="no_errors"),
    Goal(issue="7", text="stock books balance", check="books_balance"),
)


def _check(scenarios: tuple[Scenario, ...], goals: tuple[Goal, ...]) -> None:
    """A goal naming no scenario would silently never be judged: refuse it at once."""
    keys = [s.key for s in scenarios]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two scenarios share a key: {keys}")
    for goal in goals:
        for key in (goal.scenario, goal.versus):
            if key and key not in keys:
                raise ValueError(f"goal {goal.text!r} names no scenario {key!r}")


_check(SCENARIOS, GOALS)
