"""RFC 9457 problem details: one table of errors, one way to answer them, one way to document them.

Every error a client can meet is a class with its ``status``, ``code`` and ``title``: the domain's
errors (``opply.domain.errors``) and the HTTP layer's own (below). The API answers any of them as
``application/problem+json``; the admin shows the same title and status on its error page; the
OpenAPI document lists, per operation and status, exactly the codes that operation can send
(``problem_response``). Views never catch: errors end up here. A 5xx never carries a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any, ClassVar

import marshmallow as ma
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from opply.application.unit_of_work import StoreUnavailable
from opply.domain import errors as de

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_BASE = "https://opply.example/problems/"
SERVER_ERROR_DETAIL = "The server could not complete the request; it has been logged."

log = logging.getLogger("opply.errors")


class HttpProblem(Exception):
    """An error of the HTTP exchange itself rather than of the domain."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Error"
    # The headers its answer carries (api/headers.py), written into the document with it.
    sends_headers: ClassVar[tuple[str, ...]] = ()
    # Answered by the HTTP server before the request reaches the app (so without the app's
    # headers): gunicorn's limits (opply.entrypoints.gunicorn_worker).
    before_the_app: ClassVar[bool] = False

    def __init__(self, detail: str = "", *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class BadRequest(HttpProblem):
    code, status, title = "bad_request", 400, "Bad request"


class RouteNotFound(HttpProblem):
    code, status, title = "not_found", 404, "Not found"


class MethodNotAllowedProblem(HttpProblem):
    code, status, title = "method_not_allowed", 405, "Method not allowed"
    sends_headers = ("Allow",)


class NotAcceptable(HttpProblem):
    code, status, title = "not_acceptable", 406, "Not acceptable"


class PayloadTooLarge(HttpProblem):
    code, status, title = "payload_too_large", 413, "Payload too large"


class UriTooLong(HttpProblem):
    """A request line (method, path and query) longer than the server reads."""

    code, status, title = "uri_too_long", 414, "URI too long"
    before_the_app = True


class UnsupportedMediaType(HttpProblem):
    code, status, title = "unsupported_media_type", 415, "Unsupported media type"


class ValidationFailed(HttpProblem):
    code, status, title = "validation_error", 422, "Invalid request"


class RateLimited(HttpProblem):
    code, status, title = "rate_limited", 429, "Too many requests"
    sends_headers = ("Retry-After",)


class HeaderFieldsTooLarge(HttpProblem):
    """A header longer, or more headers, than the server reads."""

    code, status, title = "header_fields_too_large", 431, "Request header fields too large"
    before_the_app = True


class InternalError(HttpProblem):
    code, status, title = "internal_error", 500, "Internal server error"


class ServiceUnavailable(HttpProblem):
    code, status, title = "service_unavailable", 503, "Service unavailable"


class DatabaseUnavailable(HttpProblem):
    """The database could not be reached or dropped the connection (``StoreUnavailable``)."""

    code, status, title = "database_unavailable", 503, "Database unavailable"
    sends_headers = ("Retry-After",)


# Seconds a client should wait before retrying after a lost database: a restart or a pooler's
# reconnect takes a few; a managed failover longer, and the client's backoff covers that.
DATABASE_RETRY_AFTER_SECONDS = 2


def database_problem(error: StoreUnavailable) -> Response:
    """503 for a database that could not serve the request. A retry is always safe: a read or a
    write whose commit was never sent changed nothing, and a write lost while committing is an
    order the client retries with the same Idempotency-Key (answered from what was kept)."""
    log.warning(
        "database unavailable on %s %s: %s (%s)",
        request.method,
        request.path,
        error.detail,
        repr(error.__cause__),
    )
    detail = "The database cannot be reached right now; try again shortly"
    if error.outcome_unknown:
        detail += " (an order retried with the same Idempotency-Key is placed at most once)"
    return problem(
        DatabaseUnavailable,
        detail,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


ErrorClass = type[de.DomainError] | type[HttpProblem]


def headers_sent(error: ErrorClass) -> tuple[str, ...]:
    """The headers an answer of ``error`` carries besides the app's own (``X-Request-ID``):
    what ``domain_problem`` adds to a domain error's, or what an HTTP problem declares."""
    if issubclass(error, HttpProblem):
        return error.sends_headers
    names: tuple[str, ...] = ("WWW-Authenticate",) if error.status == 401 else ()
    if issubclass(error, de.RequestInProgress):
        names += ("Retry-After",)
    return names


def _concrete(base: ErrorClass) -> list[ErrorClass]:
    found: list[ErrorClass] = []
    for cls in base.__subclasses__():
        found.append(cls)
        found.extend(_concrete(cls))
    return found


def error_key(error: ErrorClass) -> str:
    """How an operation's document names one of its errors: a code may mean one status for an
    operation and another elsewhere (``invalid_credentials``: 401 at login, 403 for a new
    password), so the key holds both."""
    return f"{error.status}:{error.code}"


def error_table() -> dict[str, ErrorClass]:
    """Every error class by its ``error_key`` (classes sharing a key share its title)."""
    table: dict[str, ErrorClass] = {}
    for cls in [*_concrete(de.DomainError), *_concrete(HttpProblem)]:
        table.setdefault(error_key(cls), cls)
    return table


# Werkzeug's exceptions (routing, body size, our own aborts) by status.
HTTP_PROBLEMS: dict[int, type[HttpProblem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        RouteNotFound,
        MethodNotAllowedProblem,
        NotAcceptable,
        PayloadTooLarge,
        UriTooLong,
        UnsupportedMediaType,
        ValidationFailed,
        RateLimited,
        HeaderFieldsTooLarge,
        InternalError,
        ServiceUnavailable,
    )
}


class ProblemErrorSchema(ma.Schema):
    """One detail of a problem: a field, or a line of an order."""

    class Meta:
        unknown = ma.INCLUDE

    field = ma.fields.String(
        metadata={
            "description": "Dotted path of the offending field",
            "example": "lines.0.quantity",
        }
    )
    location = ma.fields.String(
        metadata={"description": "json, query, headers or path", "example": "json"}
    )
    message = ma.fields.String(metadata={"example": "Must be greater than or equal to 1."})
    product_id = ma.fields.Integer(metadata={"description": "The order line's", "example": 7})
    requested = ma.fields.Integer(metadata={"example": 5})
    available = ma.fields.Integer(metadata={"description": "In stock now", "example": 2})
    quantity = ma.fields.Integer(metadata={"description": "The line's quantity", "example": 7})
    min_order_quantity = ma.fields.Integer(
        metadata={"description": "The product's minimum", "example": 12}
    )
    case_size = ma.fields.Integer(metadata={"description": "The product's case size", "example": 6})


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with a stable machine-readable ``code``."""

    type = ma.fields.String(
        required=True, metadata={"example": "https://opply.example/problems/out-of-stock"}
    )
    title = ma.fields.String(required=True, metadata={"example": "Not enough stock"})
    status = ma.fields.Integer(required=True, metadata={"example": 409})
    detail = ma.fields.String(metadata={"example": "Product 7 has 2 in stock, 5 requested"})
    code = ma.fields.String(required=True, metadata={"example": "out_of_stock"})
    errors = ma.fields.List(ma.fields.Nested(ProblemErrorSchema))


def problem(
    error: ErrorClass | de.DomainError | HttpProblem,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The problem+json answer for an error class (or instance: its detail is the default)."""
    if detail is None and not isinstance(error, type):
        detail = error.detail
    body = problem_body(type(error) if not isinstance(error, type) else error)
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=error.status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_problem(error: de.DomainError) -> Response:
    errors: list[dict[str, Any]] | None = None
    headers: dict[str, str] = {}
    if isinstance(error, de.OutOfStock):
        errors = [
            {"product_id": s.product_id, "requested": s.requested, "available": s.available}
            for s in error.shortages
        ]
    elif isinstance(error, de.UnknownProducts | de.DuplicateProductLine):
        errors = [{"product_id": pid, "message": error.detail} for pid in error.product_ids]
    elif isinstance(error, de.OrderingRulesBroken):
        errors = [asdict(breach) for breach in error.breaches]
    elif isinstance(error, de.InvalidCountry):
        errors = [{"field": "country", "location": "json", "message": error.detail}]
    # The headers added here are the ones ``headers_sent`` documents.
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="opply"'
        if isinstance(error, de.InvalidToken):
            headers["WWW-Authenticate"] += ', error="invalid_token"'
    if isinstance(error, de.RequestInProgress):
        headers["Retry-After"] = "1"
    return problem(error, errors=errors, headers=headers)


def flatten_messages(
    messages: Any, location: str | None = None, prefix: str = ""
) -> list[dict[str, Any]]:
    """Turn marshmallow's nested message dicts into a flat list of field errors."""
    out: list[dict[str, Any]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if (
                prefix == ""
                and location is None
                and key in ("json", "query", "headers", "path", "form", "files", "cookies")
            ):
                out.extend(flatten_messages(value, str(key), ""))
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_messages(value, location, path))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            for m in messages:
                item: dict[str, Any] = {"field": prefix or "_schema", "message": m}
                if location:
                    item["location"] = location
                out.append(item)
        else:
            for m in messages:
                out.extend(flatten_messages(m, location, prefix))
    else:
        item = {"field": prefix or "_schema", "message": str(messages)}
        if location:
            item["location"] = location
        out.append(item)
    return out


def http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    kind: type[HttpProblem] = HTTP_PROBLEMS.get(
        status, InternalError if status >= 500 else BadRequest
    )
    data = getattr(error, "data", None) or {}
    headers: dict[str, str] = dict(data.get("headers") or {})
    errors: list[dict[str, Any]] | None = None
    detail = data.get("message") or error.description
    if "messages" in data:  # webargs validation failure
        errors = flatten_messages(data["messages"])
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # flask-smorest's handler loses Werkzeug's Allow header; RFC 9110 requires it.
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length") and name not in headers:
            headers[name] = value
    if status >= 500:
        detail = SERVER_ERROR_DETAIL
    return problem(kind, detail, errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(de.DomainError)
    def _domain(error: de.DomainError) -> Response:
        return domain_problem(error)

    @app.errorhandler(HttpProblem)
    def _http(error: HttpProblem) -> Response:
        return problem(error, headers=error.headers)

    @app.errorhandler(StoreUnavailable)
    def _store(error: StoreUnavailable) -> Response:
        return database_problem(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_problem(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(InternalError, SERVER_ERROR_DETAIL)


# --- the document -----------------------------------------------------------------------------


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_body(error: ErrorClass) -> dict[str, Any]:
    """What a client receives for ``error``, without the instance's ``detail``."""
    return {
        "type": PROBLEM_BASE + error.code.replace("_", "-"),
        "title": error.title,
        "status": error.status,
        "code": error.code,
    }


def problem_response(classes: Iterable[ErrorClass]) -> dict[str, dict[str, Any]]:
    """OpenAPI responses, by status, for the error classes an operation can answer: each a
    problem+json whose ``code`` is one of exactly those classes' codes, with an example each."""
    by_status: dict[int, dict[str, ErrorClass]] = {}
    for cls in classes:
        by_status.setdefault(cls.status, {})[cls.code] = cls
    responses: dict[str, dict[str, Any]] = {}
    for status, found in sorted(by_status.items()):
        codes = sorted(found)
        responses[str(status)] = {
            "description": "; ".join(f"`{code}`: {found[code].title}" for code in codes),
            "content": {
                PROBLEM_MIMETYPE: {
                    # Problem, with ``code`` narrowed to this answer's: generated clients
                    # type it as exactly these (e.g. "out_of_stock" | "request_in_progress").
                    "schema": {
                        "allOf": [
                            PROBLEM_REF,
                            {
                                "type": "object",
                                "required": ["code"],
                                "properties": {
                                    "code": {"type": "string", "enum": codes, "example": codes[0]}
                                },
                            },
                        ]
                    },
                    "examples": {code: {"value": problem_body(found[code])} for code in codes},
                }
            },
        }
    return responses
