"""What each operation can answer, declared once and written into the OpenAPI document.

Views declare the errors of their own (``@errors(OutOfStock, UnknownProducts)``); the answers
that come from the HTTP plumbing rather than the view are added to every operation they can
happen on, by ``ProblemResponsesPlugin`` (an apispec plugin), from the operation's shape:

* ``422`` ``validation_error`` wherever arguments are parsed (flask-smorest's ``arguments``);
* ``400`` ``bad_request`` and ``413`` ``payload_too_large`` wherever a body is read;
* ``500`` ``internal_error`` everywhere.

Each status becomes one problem+json response whose ``code`` is an ``enum`` of exactly the codes
that operation can send there, built from the error table (``problems.error_table``). The
catch-all ``default`` response is dropped, so a status the document does not name is a finding
for the fuzzer (``make fuzz``) instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from apispec import BasePlugin
from flask_smorest import Blueprint

from opply.entrypoints.api.problems import (
    BadRequest,
    DatabaseUnavailable,
    ErrorClass,
    InternalError,
    PayloadTooLarge,
    ValidationFailed,
    error_key,
    error_table,
    problem_response,
)

F = TypeVar("F", bound=Callable[..., Any])
ERRORS_KEY = "x-opply-errors"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def errors(*classes: ErrorClass) -> Callable[[F], F]:
    """Document errors an operation answers (several uses add up)."""
    return Blueprint.doc(**{ERRORS_KEY: {error_key(cls): True for cls in classes}})


Links = dict[int, dict[str, dict[str, str]]]


def operation(
    operation_id: str,
    *classes: ErrorClass,
    links: Links | None = None,
    uses_database: bool = True,
) -> Callable[[F], F]:
    """Name an operation (its stable ``operationId``: generated clients call it by this name),
    document the errors of its own it answers, and, with ``links`` (``{status: {operationId:
    {parameter: expression}}}``), which operations can follow it with values from its answer.
    Every operation that ``uses_database`` can answer 503 ``database_unavailable``."""
    if uses_database:
        classes = (*classes, DatabaseUnavailable)
    doc: dict[str, Any] = {
        "operationId": operation_id,
        ERRORS_KEY: {error_key(cls): True for cls in classes},
    }
    if links:
        doc["responses"] = {
            str(status): {
                "links": {
                    target: {"operationId": target, "parameters": parameters}
                    for target, parameters in targets.items()
                }
            }
            for status, targets in links.items()
        }
    return Blueprint.doc(**doc)


class ProblemResponsesPlugin(BasePlugin):
    def schema_helper(
        self, name: str, definition: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any] | None:
        """What a schema class declares about itself beyond its fields (``openapi_extra``,
        e.g. ``minProperties``), added to its component."""
        schema = kwargs.get("schema")
        extra = getattr(schema, "openapi_extra", None)
        return dict(extra) if extra else None

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        table = error_table()
        for method, operation in (operations or {}).items():
            if method not in HTTP_METHODS:
                continue
            # flask-smorest keys some responses by int (its arguments' 422): one key per status.
            responses: dict[str, Any] = {
                str(status): response
                for status, response in operation.get("responses", {}).items()
                if status != "default"
            }
            operation["responses"] = responses
            classes: list[ErrorClass] = [table[key] for key in operation.pop(ERRORS_KEY, {})]
            classes.append(InternalError)
            if "requestBody" in operation:
                classes.extend((BadRequest, PayloadTooLarge))
            unprocessable = str(HTTPStatus.UNPROCESSABLE_ENTITY.value)
            if isinstance(responses.get(unprocessable), str) or "requestBody" in operation:
                classes.append(ValidationFailed)  # flask-smorest's mark of parsed arguments
            responses.update(problem_response(classes))
