"""The SQL statements of one request, in-process, with the SQLAlchemy event the tests use.

The same probe runs against the service and the bare app: it counts the statements (the table's
SQL/req) and checks that both send the same ones, so that "service vs bare" compares the
frameworks and not two different queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event

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

    def __call__(
        self, method: str, path: str, *, warm: bool = True, **kwargs: Any
    ) -> list[str]:
        """The statements of one request; with ``warm``, of the second of two alike (the
        first use of a statement may differ)."""
        if warm:
            self.client.open(path, method=method, **kwargs)
        self.seen = []
        response = self.client.open(path, method=method, **kwargs)
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
