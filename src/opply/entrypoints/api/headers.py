"""The HTTP headers of the contract, as the OpenAPI document declares them (components).

Operations name them (``answers_with_headers("ETag", status=200)``, ``blp.response(...,
headers={"Location": "Location"})``, an error class's ``sends_headers``) and the document refers
to these definitions, so a header is described once however many answers carry it.
"""

from __future__ import annotations

from typing import Any

_SECONDS = {"type": "integer", "minimum": 0}

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id, in the server's logs too: the `X-Request-ID` you sent "
        "(1-128 characters of `A-Z a-z 0-9 . _ -`), or one the server made.",
        "required": True,
        "schema": {"type": "string", "example": "3f6c1a52e0c94a51a1d4f0b7c2e9d811"},
    },
    "Location": {
        "description": "The path of what was created.",
        "required": True,
        "schema": {"type": "string", "example": "/api/v1/orders/31/"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key` (nothing was done this time); absent otherwise.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "ETag": {
        "description": "Tag of this representation; send it back as `If-None-Match`.",
        "required": True,
        "schema": {"type": "string", "example": '"5d41402abc4b2a76b9719d911017c592"'},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": _SECONDS,
    },
    "WWW-Authenticate": {
        "description": 'How to authenticate: `Bearer`, with `error="invalid_token"` when the '
        "token sent was refused.",
        "required": True,
        "schema": {"type": "string", "example": 'Bearer realm="opply"'},
    },
    # draft-ietf-httpapi-ratelimit-headers-06, for the limit closest to refusing; absent when
    # the deployment switches its limits off.
    "RateLimit-Limit": {
        "description": "Requests allowed in the window.",
        "required": False,
        "schema": _SECONDS,
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the window.",
        "required": False,
        "schema": _SECONDS,
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window resets.",
        "required": False,
        "schema": _SECONDS,
    },
    "RateLimit-Policy": {
        "description": "The limits that apply, e.g. `10;w=60` (10 per 60 seconds).",
        "required": False,
        "schema": {"type": "string", "example": "10;w=60, 30;w=60"},
    },
    "Content-Disposition": {
        "description": "The file's name, to save it under: `inline; "
        'filename="INV-2026-000042.pdf"`.',
        "required": True,
        "schema": {"type": "string", "example": 'inline; filename="INV-2026-000042.pdf"'},
    },
    "Allow": {
        "description": "The methods the path answers.",
        "required": True,
        "schema": {"type": "string", "example": "GET, POST"},
    },
}

REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "If-None-Match": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "The `ETag` of the copy you hold: if it is still current, the answer is "
        "a bodiless 304.",
        "schema": {"type": "string"},
    },
}


def partial(name: str, codes: list[str]) -> dict[str, Any]:
    """``name``'s definition for an answer that carries it only with some of its ``codes``."""
    listed = ", ".join(f"`{code}`" for code in codes)
    header = RESPONSE_HEADERS[name]
    return {
        **header,
        "required": False,
        "description": f"{header['description']} Sent with {listed} only.",
    }


def register_headers(spec: Any) -> None:
    """Every header above, as a component of ``spec`` written only where referred to."""
    for name, header in RESPONSE_HEADERS.items():
        spec.components.header(name, header, lazy=True)
    for name, parameter in REQUEST_HEADERS.items():
        spec.components.parameter(name, parameter["in"], _without_location(parameter), lazy=True)


def _without_location(parameter: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameter.items() if k not in ("name", "in")}
