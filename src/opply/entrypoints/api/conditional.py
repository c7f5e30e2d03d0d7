"""Conditional GET: an ``ETag`` on reads, and a bare ``304 Not Modified`` when it still matches.

The tag is the SHA-1 of the JSON body the client would receive (Werkzeug's
``Response.add_etag``), so any change a client could see (stock, price, name, an order's status,
the paging links) changes it, and a match is answered by ``Response.make_conditional``: a
bodiless 304 that carries the ``ETag`` (RFC 9110, section 15.4.5). Both are public Werkzeug
API; the document declares the ``If-None-Match`` parameter, the ``ETag`` header and the 304
answer. Put ``@conditional(blp)`` above ``@blp.response``: it works on the response that
decorator built.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, request
from flask_smorest import Blueprint

from opply.entrypoints.api.operations import answers_with_headers, header_parameters

F = TypeVar("F", bound=Callable[..., Any])


def conditional(blp: Blueprint) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200:
                response.add_etag()
                response.make_conditional(request)
            return response

        documented = blp.alt_response(
            304,
            description="Not Modified: the copy you hold (`If-None-Match`) is current",
            headers={"ETag": "ETag"},
        )(wrapper)
        documented = answers_with_headers("ETag", status=200)(documented)
        return header_parameters("If-None-Match")(documented)

    return decorate
