"""What each operation can answer, declared once and written into the OpenAPI document.

Views declare the errors of their own (``@operation("placeOrder", OutOfStock, ...)``); the
answers that come from the HTTP plumbing rather than the view are added to every operation they
can happen on, by ``ProblemResponsesPlugin`` (an apispec plugin), from the operation's shape:

* ``422`` ``validation_error`` wherever arguments are parsed (flask-smorest's ``arguments``);
* ``400`` ``bad_request`` and ``413`` ``payload_too_large`` wherever a body is read;
* ``503`` ``database_unavailable`` wherever the database is used (``operation``'s default);
* ``414`` ``uri_too_long`` and ``431`` ``header_fields_too_large`` (the server's limits, before
  the app) and ``500`` ``internal_error`` everywhere.

Each status becomes one problem+json response whose ``code`` is an ``enum`` of exactly the codes
that operation can send there, built from the error table (``problems.error_table``), with the
headers those errors' answers carry (``problems.headers_sent``). Every answer the app makes
declares ``X-Request-ID``; operations add their own headers and header parameters by name
(``answers_with_headers``, ``header_parameters``; defined in ``api/headers.py``). An operation
without ``security`` gets ``security: []``: it is public, not undocumented. The catch-all
``default`` response is dropped, so a status the document does not name is a finding for the
fuzzer (``make fuzz``) instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from apispec import BasePlugin
from flask_smorest import Blueprint

from opply.entrypoints.api import headers
from opply.entrypoints.api.problems import (
    BadRequest,
    DatabaseUnavailable,
    ErrorClass,
    HeaderFieldsTooLarge,
    HttpProblem,
    InternalError,
    PayloadTooLarge,
    UriTooLong,
    ValidationFailed,
    error_key,
    error_table,
    headers_sent,
    problem_response,
)

F = TypeVar("F", bound=Callable[..., Any])
ERRORS_KEY = "x-opply-errors"
HEADERS_KEY = "x-opply-headers"
PARAMETERS_KEY = "x-opply-parameters"
EVERY_ANSWER = "*"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Every operation can meet these: the server's own limits, and a fault of ours.
EVERYWHERE: tuple[ErrorClass, ...] = (UriTooLong, HeaderFieldsTooLarge, InternalError)
APP_HEADER = "X-Request-ID"  # on every answer the app makes (entrypoints/observability.py)


def errors(*classes: ErrorClass) -> Callable[[F], F]:
    """Document errors an operation answers (several uses add up)."""
    return Blueprint.doc(**{ERRORS_KEY: {error_key(cls): True for cls in classes}})


def answers_with_headers(*names: str, status: int | None = None) -> Callable[[F], F]:
    """Document response headers (by their name in ``api/headers.py``) on the answers with
    ``status``, or on every answer the app makes for the operation (several uses add up)."""
    key = EVERY_ANSWER if status is None else str(status)
    return Blueprint.doc(**{HEADERS_KEY: {key: dict.fromkeys(names, True)}})


def header_parameters(*names: str) -> Callable[[F], F]:
    """Document request headers the operation reads without parsing them as arguments (by their
    name in ``api/headers.py``)."""
    return Blueprint.doc(**{PARAMETERS_KEY: dict.fromkeys(names, True)})


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


def merged(original: Any, update: Any) -> Any:
    """``update`` laid over ``original``, dictionaries merged at every depth."""
    if not isinstance(original, Mapping) or not isinstance(update, Mapping):
        return update
    out = dict(original)
    for key, value in update.items():
        out[key] = merged(out.get(key), value)
    return out


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
        for method, operation in (operations or {}).items():
            if method in HTTP_METHODS:
                complete(operation)


def complete(operation: dict[str, Any]) -> None:
    """Add to one operation its problem answers, headers, header parameters and security."""
    # flask-smorest keys responses by int, manual doc by str: one key per status, merged. Its
    # parsed arguments leave a reference (a str) at 422, replaced by our problem below.
    responses: dict[str, Any] = {}
    for status, response in operation.get("responses", {}).items():
        if status != "default" and isinstance(response, Mapping):
            responses[str(status)] = merged(responses.get(str(status), {}), response)
    table = error_table()
    classes: list[ErrorClass] = [table[key] for key in operation.pop(ERRORS_KEY, {})]
    classes.extend(EVERYWHERE)
    if "requestBody" in operation:
        classes.extend((BadRequest, PayloadTooLarge))
    unprocessable = HTTPStatus.UNPROCESSABLE_ENTITY.value
    if unprocessable in operation.get("responses", {}) or "requestBody" in operation:
        classes.append(ValidationFailed)  # flask-smorest's mark of parsed arguments
    for status, response in problem_response(classes).items():
        responses[status] = merged(responses.get(status, {}), response)
    declared: dict[str, dict[str, bool]] = operation.pop(HEADERS_KEY, {})
    for status, response in responses.items():
        here = [cls for cls in classes if str(cls.status) == status]
        names = _headers(here, {**declared.get(EVERY_ANSWER, {}), **declared.get(status, {})})
        found = {**names, **response.get("headers", {})}
        if found:
            response["headers"] = {name: _header(header) for name, header in found.items()}
    operation["responses"] = responses
    parameters = list(operation.pop(PARAMETERS_KEY, {}))
    if parameters:
        operation["parameters"] = [*operation.get("parameters", []), *parameters]
    operation.setdefault("security", [])


def _header(header: Any) -> Any:
    """A header named by its component: a reference when it is always sent, else its definition
    itself (openapi-typescript makes every referenced header required)."""
    if isinstance(header, str) and not headers.RESPONSE_HEADERS[header]["required"]:
        return dict(headers.RESPONSE_HEADERS[header])
    return header


def _headers(classes: list[ErrorClass], declared: Mapping[str, bool]) -> dict[str, Any]:
    """The headers of one answer: by component name (a ``str``, made a ``$ref`` by apispec)
    when every way to give this answer carries it, otherwise inline and optional."""
    if classes and all(issubclass(c, HttpProblem) and c.before_the_app for c in classes):
        return {}  # the server's own answer: none of the app's headers
    found: dict[str, Any] = {APP_HEADER: APP_HEADER, **{name: name for name in declared}}
    for name in dict.fromkeys(name for cls in classes for name in headers_sent(cls)):
        senders = sorted({cls.code for cls in classes if name in headers_sent(cls)})
        if len(senders) == len({cls.code for cls in classes}):
            found[name] = name
        else:
            found[name] = headers.partial(name, senders)
    return found
