"""Structured logs: one JSON object per line, carrying the id of the request being served.

The request id lives in a context variable that the HTTP layer sets when a request starts and
resets when it ends, so every line logged while serving it (by us, SQLAlchemy or a library) names
it without anyone passing it around. This module imports nothing of Flask or Prometheus:
gunicorn's master loads it from ``gunicorn.conf.py`` to format its own lines the same way.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("opply_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged too.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_HANDLER_NAME = "opply-json"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra}``, one object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send every log record, as JSON, to standard output (once per process).

    Containers log to stdout; the platform (docker, CloudWatch) keeps the lines. When gunicorn
    has already installed our formatter (``gunicorn.conf.py``), only the level is set.
    """
    root = logging.getLogger()
    already = any(
        h.get_name() == _HANDLER_NAME or isinstance(h.formatter, JsonFormatter)
        for h in root.handlers
    )
    if not already:
        handler = _StdoutHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("opply").setLevel(level)


def gunicorn_logconfig(level: str = "INFO", *, access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for gunicorn: its lines and the app's, all JSON on stdout.

    gunicorn writes access lines whenever a logging config is given; unless ``access_log`` is
    asked for they are dropped, since the app logs each request itself (with its request id).
    """
    access: dict[str, Any] = {"level": level, "handlers": [], "propagate": True}
    if not access_log:
        access = {"level": "CRITICAL", "handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": f"{__name__}._StdoutHandler",
                "formatter": "json",
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": access,
        },
    }
