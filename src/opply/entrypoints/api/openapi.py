"""The error answers every operation can give, written into the OpenAPI document once.

flask-smorest documents what each view declares (its success, ``422`` for parsed arguments,
and what ``alt_response`` adds). The answers that come from the HTTP plumbing rather than the
view are the same everywhere, so this apispec plugin adds them to every operation:

* ``400`` (``bad_request``) and ``413`` (``payload_too_large``) wherever a body is read: the
  body is not JSON, or is over 1 MiB;
* ``500`` (``internal_error``) everywhere: a problem document without any internal detail.

It also drops the catch-all ``default`` response, so a status code the document does not name
is a finding for the fuzzer (``make fuzz``) instead of passing silently.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin

BODY_ERRORS = (HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
EVERY_OPERATION_ERRORS = (HTTPStatus.INTERNAL_SERVER_ERROR,)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class ProblemResponsesPlugin(BasePlugin):
    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            if method not in HTTP_METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("default", None)
            wanted = list(EVERY_OPERATION_ERRORS)
            if "requestBody" in operation:
                wanted.extend(BODY_ERRORS)
            for status in wanted:
                # A component name (e.g. "BAD_REQUEST"): the Api registers one per status.
                responses.setdefault(str(status.value), status.name)
