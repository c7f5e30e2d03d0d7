"""The load generators: wrk for HTTP, pgbench for the database's own ceiling."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from knobs import BENCH, BIN, Knobs, say


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    say("wrk is missing: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def pgbench_path() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if not found:
        raise SystemExit("pgbench not found (it comes with the PostgreSQL server packages)")
    return found


@dataclass
class Load:
    """What wrk measured of one scenario on one server."""

    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def unexpected(self, expect: str) -> int:
        """Socket errors and answers outside the expected class ("2xx" or "3xx")."""
        return self.errors + sum(n for k, n in self.statuses.items() if k != expect)


def _wrk_once(knobs: Knobs, base: str, args: list[str], seconds: int) -> dict[str, Any]:
    """One wrk run; the last argument wrk.lua gets is unique to the run (for its keys)."""
    command = [wrk_path(), "-t2", f"-c{knobs.connections}", "--timeout", "10s"]
    command += ["-s", str(BENCH / "wrk.lua"), f"-d{seconds}s", base, "--", *args]
    command.append(uuid.uuid4().hex[:12])
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    return dict(json.loads(line.removeprefix("WRKJSON ")))


def wrk(knobs: Knobs, base: str, args: list[str], profile: tuple[Path, int] | None = None) -> Load:
    """A warm-up, then the measured run; ``profile`` (a file, a worker's PID): py-spy records
    that worker meanwhile."""
    _wrk_once(knobs, base, args, knobs.warmup)
    profiler = _start_profiler(knobs, *profile) if profile else None
    data = _wrk_once(knobs, base, args, knobs.seconds)
    if profiler is not None:
        profiler.wait()
    statuses = {k: int(data[f"s{k}"]) for k in ("2xx", "3xx", "4xx", "5xx")}
    socket_errors = sum(int(data[k]) for k in ("connect", "read", "write", "timeout"))
    return Load(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=int(data["requests"]),
        errors=socket_errors,
        statuses=statuses,
    )


def _start_profiler(knobs: Knobs, target: Path, pid: int) -> subprocess.Popen[bytes]:
    """py-spy on one worker; only samples holding the GIL: Python's own CPU time, not waits."""
    command = [str(BIN / "py-spy"), "record", "--nonblocking", "--gil", "-r", "200"]
    command += ["-d", str(knobs.seconds), "-f", "raw", "-o", str(target), "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pgbench(knobs: Knobs, database_url: str, script: Path, variables: dict[str, int]) -> float:
    """Transactions per second of ``script`` with as many clients as wrk has connections."""
    out = _pgbench_run(knobs, database_url, [script], variables)
    for line in out.splitlines():
        if line.startswith("tps =") and "without initial connection time" in line:
            return float(line.split()[2])
    raise SystemExit(f"pgbench printed no tps:\n{out}")


def pgbench_in_turn(
    knobs: Knobs, database_url: str, scripts: list[Path], variables: dict[str, int]
) -> list[float]:
    """The average latency in ms of each of ``scripts``, run in one pgbench run, each client
    picking one at random for each transaction: both meet the same load and the same locks,
    so their ratio is what one costs against the other, however busy the machine is."""
    out = _pgbench_run(knobs, database_url, [Path(f"{s}@1") for s in scripts], variables)
    found = [
        float(line.split("=")[1].split()[0])
        for line in out.splitlines()
        if line.startswith(" - latency average =")
    ]
    if len(found) != len(scripts):
        raise SystemExit(f"pgbench printed no latency per script:\n{out}")
    return found


def _pgbench_run(
    knobs: Knobs, database_url: str, scripts: list[Path], variables: dict[str, int]
) -> str:
    url = make_url(database_url)
    command = [pgbench_path(), "-n", "-c", str(knobs.connections), "-j", "2"]
    command += ["-T", str(knobs.ceiling_seconds), "-h", url.host or "127.0.0.1"]
    command += ["-p", str(url.port or 5432), "-U", url.username or "postgres"]
    for script in scripts:
        command += ["-f", str(script)]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(url.database or "postgres")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        names = ", ".join(script.name for script in scripts)
        raise SystemExit(f"pgbench {names} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout
