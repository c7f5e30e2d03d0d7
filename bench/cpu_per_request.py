"""Python CPU time per request of the hot endpoints, in-process, on a throwaway PostgreSQL.

The app runs with production settings (limiter, metrics, request log) behind Flask's test
client, so there is no HTTP and no gunicorn: what is left is our own process's CPU time
(``time.process_time``) per request, the figure that bounds the rates of `make bench` on a
2-core machine. Run with `.venv/bin/python bench/cpu_per_request.py` (BENCH_DATABASE_URL as for
`make bench`; CPU_REQUESTS requests per round, 1,000 by default; the least of CPU_ROUNDS
rounds, 3, is printed; CPU_PROFILE names a row to profile with cProfile, CPU_SORT its order).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    PASSWORD,
    ROOT,
    load,
    order_body,
    throwaway_database,
)

REQUESTS = int(os.environ.get("CPU_REQUESTS", "1000"))
ROUNDS = int(os.environ.get("CPU_ROUNDS", "3"))
PROFILE = os.environ.get("CPU_PROFILE")  # a name of a row: profile it with cProfile instead


def measure(client: Any, method: str, path: str, make_kwargs: Any, expect: int) -> float:
    for i in range(50):  # warm-up: statement caches, first-use imports
        client.open(path, method=method, **make_kwargs(i))
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for i in range(REQUESTS):
            response = client.open(path, method=method, **make_kwargs(i))
            if response.status_code != expect:
                raise SystemExit(f"{method} {path}: {response.status_code} {response.get_data()!r}")
        rounds.append((time.process_time() - started) / REQUESTS * 1000)
    return min(rounds)  # the least disturbed by the other processes on the machine


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from opply.adapters.database import make_engine
    from opply.adapters.migrations import runner
    from opply.entrypoints.app import create_app
    from opply.entrypoints.config import Settings

    with throwaway_database() as database_url:
        engine = make_engine(database_url)
        runner.upgrade(engine)
        load(engine)
        engine.dispose()
        settings = Settings(
            database_url=database_url,
            secret_key=secrets.token_urlsafe(48),
            env="production",
            log_level="INFO",
        )
        app = create_app(settings)
        client = app.test_client()
        out = sys.stdout
        # The JSON request log is written (its cost counts) to /dev/null instead of the terminal.
        devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
        sys.stdout = devnull
        login = client.post("/api/token/", json={"username": "customer01", "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.get_json()['access']}"}
        for i in range(20):  # a full first page of 2-line orders in the history
            client.post("/api/v1/orders/", json=order_body(2, i), headers=auth)
        order_id = client.get("/api/v1/orders/", headers=auth).get_json()["results"][0]["id"]
        rows = [
            ("product detail", "GET", "/api/v1/products/7/", lambda i: {}, 200),
            ("product list page", "GET", "/api/v1/products/", lambda i: {}, 200),
            (
                "place an order of 2 lines",
                "POST",
                "/api/v1/orders/",
                lambda i: {"json": order_body(2, i), "headers": auth},
                201,
            ),
            (
                "order history page (20 orders of 2 lines)",
                "GET",
                "/api/v1/orders/",
                lambda i: {"headers": auth},
                200,
            ),
            (
                "order detail",
                "GET",
                f"/api/v1/orders/{order_id}/",
                lambda i: {"headers": auth},
                200,
            ),
            (  # last: its orders would fill the history page above
                "place an order of 50 lines",
                "POST",
                "/api/v1/orders/",
                lambda i: {"json": order_body(50, i), "headers": auth},
                201,
            ),
        ]
        print(f"{'request':<44} {'CPU ms/request':>14}", file=out)
        try:
            for name, method, path, kwargs, expect in rows:
                if PROFILE and name != PROFILE:
                    continue
                if PROFILE:
                    profile = cProfile.Profile(time.process_time)
                    profile.enable()
                cpu = measure(client, method, path, kwargs, expect)
                if PROFILE:
                    profile.disable()
                    pstats.Stats(profile, stream=out).sort_stats(
                        os.environ.get("CPU_SORT", "cumulative")
                    ).print_stats(60)
                print(f"{name:<44} {cpu:>14.3f}", file=out, flush=True)
        finally:
            sys.stdout = out
            devnull.close()
        app.extensions["container"].engine().dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
