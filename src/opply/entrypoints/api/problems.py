"""RFC 9457 problem details: one map from errors to responses, for every endpoint.

Views never catch: domain errors and HTTP errors alike end up here and leave as
``application/problem+json`` with a stable ``code``. A 5xx never carries a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from opply.domain import errors as de

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_BASE = "https://opply.example/problems/"

log = logging.getLogger("opply.errors")

DOMAIN_STATUS: dict[type[de.DomainError], int] = {
    de.OutOfStock: 409,
    de.OrderNotCancellable: 409,
    de.RequestInProgress: 409,
    de.UsernameTaken: 409,
    de.UnknownProducts: 422,
    de.DuplicateProductLine: 422,
    de.EmptyOrder: 422,
    de.InvalidQuantity: 422,
    de.InvalidPrice: 422,
    de.InvalidName: 422,
    de.InvalidUsername: 422,
    de.WeakPassword: 422,
    de.IdempotencyKeyReused: 422,
    de.ProductNotFound: 404,
    de.OrderNotFound: 404,
    de.UserNotFound: 404,
    de.AuthenticationFailed: 401,
    de.InvalidToken: 401,
    de.NotAuthenticated: 401,
    de.PermissionDenied: 403,
}

TITLES: dict[str, str] = {
    "out_of_stock": "Not enough stock",
    "order_not_cancellable": "Order cannot be cancelled",
    "request_in_progress": "Request in progress",
    "username_taken": "Username taken",
    "unknown_product": "Unknown product",
    "duplicate_product": "Repeated product",
    "empty_order": "Empty order",
    "invalid_quantity": "Invalid quantity",
    "invalid_price": "Invalid price",
    "invalid_name": "Invalid name",
    "invalid_username": "Invalid username",
    "weak_password": "Weak password",
    "idempotency_key_reused": "Idempotency-Key reused",
    "invalid_credentials": "Invalid credentials",
    "invalid_token": "Invalid token",
    "not_authenticated": "Not authenticated",
    "permission_denied": "Permission denied",
    "validation_error": "Invalid request",
}

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ProblemErrorSchema(ma.Schema):
    """One detail of a problem: a field, or a line of an order."""

    class Meta:
        unknown = ma.INCLUDE

    field = ma.fields.String(metadata={"description": "Dotted path of the offending field"})
    location = ma.fields.String(metadata={"description": "json, query, headers or path"})
    message = ma.fields.String()
    product_id = ma.fields.Integer()
    requested = ma.fields.Integer()
    available = ma.fields.Integer()


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
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code.replace("_", "-"),
        "title": title or TITLES.get(code) or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_problem(error: de.DomainError) -> Response:
    status = next((s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls)), 400)
    errors: list[dict[str, Any]] | None = None
    headers: dict[str, str] = {}
    if isinstance(error, de.OutOfStock):
        errors = [
            {"product_id": s.product_id, "requested": s.requested, "available": s.available}
            for s in error.shortages
        ]
    elif isinstance(error, de.UnknownProducts | de.DuplicateProductLine):
        errors = [{"product_id": pid, "message": error.detail} for pid in error.product_ids]
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="opply"'
        if isinstance(error, de.InvalidToken):
            headers["WWW-Authenticate"] += ', error="invalid_token"'
    if isinstance(error, de.RequestInProgress):
        headers["Retry-After"] = "1"
    return problem(status, error.code, error.detail, errors=errors, headers=headers)


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
    code = HTTP_CODES.get(status, "error")
    data = getattr(error, "data", None) or {}
    headers: dict[str, str] = dict(data.get("headers") or {})
    errors: list[dict[str, Any]] | None = None
    detail = data.get("message") or error.description
    if "messages" in data:  # webargs validation failure
        errors = flatten_messages(data["messages"])
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        if status == 400:
            code = "bad_request"
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # flask-smorest's handler loses Werkzeug's Allow header; RFC 9110 requires it.
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length") and name not in headers:
            headers[name] = value
    if status >= 500:
        detail = "The server could not complete the request; it has been logged."
    return problem(status, code, detail, errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(de.DomainError)
    def _domain(error: de.DomainError) -> Response:
        return domain_problem(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_problem(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(
            500, "internal_error", "The server could not complete the request; it has been logged."
        )
