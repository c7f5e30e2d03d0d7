"""Conditional GET: an ``ETag`` on reads, and a bare 304 when ``If-None-Match`` matches.

flask-smorest's ``@blp.etag`` does the wiring and documents it in the OpenAPI document (the
``If-None-Match`` parameter, the ``ETag`` header and the 304 answer). Two things are done
differently here:

* The tag is the SHA-1 of the JSON body the client would receive, already serialised, instead
  of serialising the data a second time to hash it. Any change of what a client sees (stock,
  price, name, an order's status, the paging links) changes the tag.
* A match is answered by Werkzeug's ``make_conditional``: a bodiless 304 that carries the
  ``ETag`` (RFC 9110 section 15.4.5), instead of flask-smorest's ``NotModified`` exception,
  which our error handler would turn into a problem+json body without the tag.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from flask_smorest.etag import _get_etag_ctx

CONDITIONAL_METHODS = ("GET", "HEAD")


class ConditionalBlueprint(Blueprint):
    """A flask-smorest Blueprint whose ``@etag`` views answer revalidations with a bare 304."""

    def _check_not_modified(self, etag: str) -> None:
        # Decided in _set_etag_in_response, once the response (and so its tag) exists.
        return None

    def _set_etag_in_response(self, response: Response) -> None:
        if request.method not in CONDITIONAL_METHODS:
            super()._set_etag_in_response(response)
            return
        explicit: Any = _get_etag_ctx().get("etag")  # set by set_etag() in a view, if any
        if explicit is not None:
            response.set_etag(explicit)
        else:
            response.add_etag()  # SHA-1 of the body
        response.make_conditional(request)
