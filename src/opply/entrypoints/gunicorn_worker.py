"""gunicorn's sync worker, answering its own refusals as problem+json like the app does.

gunicorn refuses a request line or headers over its limits (``gunicorn.conf.py``) before the app
sees the request, with an HTML page. A client generated from the OpenAPI document expects a
problem with a ``code``: this worker answers those two refusals (414 ``uri_too_long``, 431
``header_fields_too_large``) as the document describes, and leaves every other one to gunicorn.
``Worker.handle_error`` is gunicorn's hook for exactly this (a worker class is a setting);
tests/integration/test_server_limits.py fails if gunicorn stops calling it.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.sync import SyncWorker

from opply.entrypoints.api.problems import (
    PROBLEM_MIMETYPE,
    HeaderFieldsTooLarge,
    HttpProblem,
    UriTooLong,
    problem_body,
)

REFUSALS: dict[type[Exception], tuple[type[HttpProblem], str]] = {
    LimitRequestLine: (UriTooLong, "The request line (method, path and query) is too long"),
    LimitRequestHeaders: (HeaderFieldsTooLarge, "A header is too long, or there are too many"),
}


def refusal(error: type[HttpProblem], detail: str) -> bytes:
    """The whole HTTP answer for ``error``; the connection is closed after it."""
    body = json.dumps({**problem_body(error), "detail": detail}).encode()
    reason = error.title.encode()
    head = (
        b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (error.status, reason, PROBLEM_MIMETYPE.encode(), len(body))
    )
    return head + body


class ProblemSyncWorker(SyncWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        for kind, (error, detail) in REFUSALS.items():
            if isinstance(exc, kind):
                ip = addr[0] if addr else ""
                self.log.warning("Invalid request from ip=%s: %s", ip, exc)
                try:
                    util.write_nonblock(client, refusal(error, detail))
                except Exception:  # the client went away: nothing to answer
                    self.log.debug("Failed to send error message.")
                return
        super().handle_error(req, client, addr, exc)
