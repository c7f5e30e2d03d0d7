"""The SQL statements of one request, in-process, with the SQLAlchemy event the tests use.

The same probe runs against the service and the bare app: it counts the statements (the table's
SQL/req) and checks that both send the same ones, so that "service vs bare" compares the
frameworks and not two different queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event

from dataset import PASSWORD, PRODUCTS
from scenarios import Probe

_SPACE = re.compile(r"\s+")


def normalised(statement: str) -> str:
    """A statement without the layout of its text (SQLAlchemy breaks lines before FROM...)."""
    return _SPACE.sub(" ", statement).replace("( ", "(").replace(" )", ")").strip()


class StatementTrace:
    """Records what a Flask app's engines send while ``__call__`` runs one request."""

    def __init__(self, app: Flask, engines: Iterable[Engine]) -> None:
        self.client = app.test_client()
        self.engines = list(dict.fromkeys(engines))
        self.seen: list[str] = []
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(normalised(statement))

    def __call__(self, method: str, path: str, options: Callable[[], dict[str, Any]]) -> list[str]:
        """The statements of the second of two requests (the first use of a statement may
        differ); ``options`` gives each its test-client keywords (headers, json)."""
        self.client.open(path, method=method, **options())
        self.seen = []
        response = self.client.open(path, method=method, **options())
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.get_data()!r}")
        return self.seen

    def close(self) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._seen)
            engine.dispose()


def first_difference(service: list[str], bare: list[str]) -> str:
    """'' when both sent the same statements, else where they part."""
    for index, (ours, theirs) in enumerate(zip(service, bare, strict=False)):
        if ours != theirs:
            return f"statement {index + 1}: service {ours[:160]!r} ... bare {theirs[:160]!r}"
    if len(service) != len(bare):
        return f"service sent {len(service)} statements, bare {len(bare)}"
    return ""


class Probes:
    """The service and the bare app in this process, on the bench's database, for the
    statement counts of the table and the check that both send the same SQL."""

    def __init__(self, database_url: str, secret_key: str, tokens: dict[str, str]) -> None:
        import bare_app
        from opply.entrypoints.app import create_app
        from opply.entrypoints.config import Settings

        settings = Settings(
            database_url=database_url, secret_key=secret_key, env="production", log_level="WARNING"
        )
        service = create_app(settings)
        container = service.extensions["container"]
        self.service = StatementTrace(service, [container.engine(), container.read_engine()])
        bare = bare_app.create_app(database_url, secret_key)
        self.bare = StatementTrace(bare, bare_app.engines(bare))
        self.tokens = tokens
        self.keys = 0

    def _options(self, probe: Probe) -> Callable[[], dict[str, Any]]:
        headers: dict[str, str] = {}
        if probe.user:
            headers["Authorization"] = f"Bearer {self.tokens[probe.user]}"
        if probe.etag:
            headers["If-None-Match"] = self.service.client.get(probe.path).headers["ETag"]

        def options() -> dict[str, Any]:
            found: dict[str, Any] = {"headers": dict(headers)}
            if probe.order_lines:
                self.keys += 1
                found["headers"]["Idempotency-Key"] = f"probe-{self.keys}"
                found["json"] = order_body(probe.order_lines, self.keys)
            if probe.login_as:
                found["json"] = {"username": probe.login_as, "password": PASSWORD}
            return found

        return options

    def __call__(self, probe: Probe, *, compare: bool) -> tuple[int, str]:
        """The service's statement count, and where the bare app's statements differ ('' if
        they do not, or if ``compare`` is false)."""
        options = self._options(probe)
        service = self.service(probe.method, probe.path, options)
        if not compare:
            return len(service), ""
        return len(service), first_difference(service, self.bare(probe.method, probe.path, options))

    def close(self) -> None:
        self.service.close()
        self.bare.close()


def order_body(lines: int, start: int) -> dict[str, Any]:
    """``lines`` distinct products, spread over the catalogue as wrk.lua spreads them."""
    step = PRODUCTS // lines
    first = start % step + 1
    return {"lines": [{"product_id": first + k * step, "quantity": 1} for k in range(lines)]}
