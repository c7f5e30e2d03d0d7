"""How a bench run is shaped: read once from the environment and the command line.

``--quick`` (or ``BENCH_QUICK=1``) is for checking that the bench works, not for figures: every
scenario runs, for a second or two each, so the whole run takes about two minutes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SQL = BENCH / "sql"
BIN = Path(sys.executable).parent

Target = Literal["local", "stack"]


@dataclass(frozen=True, kw_only=True)
class Knobs:
    seconds: int
    warmup: int
    ceiling_seconds: int
    workers: int
    worker_class: str
    threads: int
    connections: int
    admin_url: str
    profile_dir: Path | None
    only: frozenset[str]  # scenario keys to run; empty: all of them
    target: Target
    quick: bool

    def runs(self, key: str) -> bool:
        return not self.only or key in self.only


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _target(value: str) -> Target:
    if value not in ("local", "stack"):
        raise SystemExit(f"BENCH_TARGET must be local or stack, not {value!r}")
    return "stack" if value == "stack" else "local"


def from_environment(argv: list[str]) -> Knobs:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    seconds = _int("BENCH_SECONDS", 2 if quick else 10)
    profile = os.environ.get("BENCH_PROFILE")
    only = os.environ.get("BENCH_ONLY", "")
    return Knobs(
        seconds=seconds,
        warmup=_int("BENCH_WARMUP", 1 if quick else 2),
        ceiling_seconds=_int("BENCH_CEILING_SECONDS", max(2 if quick else 3, seconds // 2)),
        workers=_int("BENCH_WORKERS", 4),
        worker_class=os.environ.get("BENCH_WORKER_CLASS", "sync"),
        threads=_int("BENCH_THREADS", 1),
        connections=_int("BENCH_CONNECTIONS", 32),
        admin_url=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
        ),
        profile_dir=Path(profile) if profile else None,
        only=frozenset(key.strip() for key in only.split(",") if key.strip()),
        target=_target(os.environ.get("BENCH_TARGET", "local")),
        quick=quick,
    )


def say(message: str) -> None:
    """A progress line of the run, with the time."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
