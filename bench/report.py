"""What a run prints: progress lines, the table of scenarios, and the goals met or not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios import Goal, Scenario
    from tools import Load


@dataclass
class Row:
    """One scenario's figures: the service's, the bare app's, the ceiling's."""

    scenario: Scenario
    service: Load
    bare: Load | None = None
    ceiling: float | None = None
    in_turn_cost: float | None = None  # the in-turn ceiling's transaction against this one's
    statements: int | None = None
    sql_difference: str = ""  # where the bare app's statements part from the service's
    note: str = ""

    @property
    def of_ceiling(self) -> float | None:
        return self.service.rps / self.ceiling if self.ceiling else None

    @property
    def of_bare(self) -> float | None:
        return self.service.rps / self.bare.rps if self.bare and self.bare.rps else None

    @property
    def cost(self) -> float:
        return 1 / self.service.rps if self.service.rps else float("inf")

    @property
    def unexpected(self) -> int:
        expect = self.scenario.expect
        return self.service.unexpected(expect) + (self.bare.unexpected(expect) if self.bare else 0)


@dataclass
class Run:
    rows: list[Row] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    books_balance: bool = True
    units_sold: int = 0

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.scenario.key == key), None)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def table(rows: Sequence[Row]) -> str:
    header = (
        f"{'scenario':<34} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'SQL/req':>7}"
        f" {'bare/s':>7} {'of bare':>7} {'ceiling/s':>9} {'of ceil':>7}  note"
    )
    lines = ["", header, "-" * len(header)]
    for r in rows:
        s = r.service
        statements = "" if r.statements is None else str(r.statements)
        lines.append(
            f"{r.scenario.name:<34} {s.rps:>7.0f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f}"
            f" {r.unexpected:>6} {statements:>7} {_rate(r.bare.rps if r.bare else None):>7}"
            f" {_share(r.of_bare):>7} {_rate(r.ceiling):>9} {_share(r.of_ceiling):>7}  {r.note}"
        )
    return "\n".join(lines)


def _both(run: Run, goal: Goal) -> tuple[Row, Row] | None:
    row, versus = run.row(goal.scenario), run.row(goal.versus)
    return (row, versus) if row and versus else None


def judge(run: Run, goal: Goal) -> tuple[bool, str] | None:
    """Whether ``goal`` is met and the figure that says so; None if the run has no figure."""
    row = run.row(goal.scenario)
    if goal.check == "of_ceiling":
        share = row.of_ceiling if row else None
        return None if share is None else (share >= goal.limit, f"{share:.0%}")
    if goal.check == "of_bare":
        share = row.of_bare if row else None
        return None if share is None else (share >= goal.limit, f"{share:.0%}")
    if goal.check == "p99_below":
        return (
            None
            if row is None
            else (row.service.p99_ms < goal.limit, f"{row.service.p99_ms:.1f} ms")
        )
    if goal.check == "in_turn_cost_at_most":
        cost = row.in_turn_cost if row else None
        return None if cost is None else (cost <= goal.limit, f"{cost:.2f}x")
    if goal.check in ("cost_at_most", "same_statements"):
        both = _both(run, goal)
        if both is None:
            return None
        a, b = both
        if goal.check == "same_statements":
            return a.statements == b.statements, f"{a.statements} and {b.statements}"
        growth = a.cost / b.cost
        return growth <= goal.limit, f"{growth:.2f}x"
    if goal.check == "rss_below":
        worst = max(run.rss_mb, default=0.0)
        return worst < goal.limit, f"max {worst:.0f} MB"
    if goal.check == "no_errors":
        failing = [r.scenario.key for r in run.rows if r.unexpected]
        return not failing, ", ".join(failing)
    if goal.check == "books_balance":
        return run.books_balance, f"{run.units_sold} units in placed orders"
    differing = [f"{r.scenario.key}: {r.sql_difference}" for r in run.rows if r.sql_difference]
    return not differing, "; ".join(differing)


def goals(run: Run, all_goals: Sequence[Goal]) -> str:
    """A line per goal the run has figures for."""
    lines = ["Goals:"]
    for goal in all_goals:
        verdict = judge(run, goal)
        if verdict is not None:
            met, detail = verdict
            mark = "met" if met else "NOT MET"
            lines.append(
                f"  [{mark}] {goal.text} (issue {goal.issue})" + (f": {detail}" if detail else "")
            )
    return "\n".join(lines)


def machine() -> str:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} CPUs ({model}); load average {load_average()}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
