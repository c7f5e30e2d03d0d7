"""The contract's page envelope: count, next, previous, results."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import request

from opply.application.dto import Page, PageRequest
from opply.entrypoints.api.schemas import PageEnvelope


def page_envelope(page: Page[Any], req: PageRequest, filters: dict[str, Any]) -> PageEnvelope:
    """The envelope of ``page``, with absolute links to its neighbours that keep ``filters``.

    Links name the route's canonical path (with its trailing slash), whatever spelling the
    client used, on the host the request came to."""
    last_page = max(1, -(-page.total // req.page_size))
    has_next = req.page < last_page and req.offset + len(page.items) < page.total
    has_previous = req.page > 1
    next_link = previous_link = None
    if has_next or has_previous:
        assert request.url_rule is not None
        # Scheme and host as Werkzeug (and ProxyFix, behind a proxy) read them; not
        # ``request.url_root``, which rebuilds and re-decodes the whole URL.
        base = f"{request.scheme}://{request.host}{request.root_path}{request.url_rule.rule}?"
        kept = {k: _text(v) for k, v in filters.items() if v not in (None, False, "")}
        size = req.page_size
        if has_next:
            next_link = base + _query({**kept, "page": req.page + 1, "page_size": size})
        if has_previous:
            number = min(req.page - 1, last_page)
            previous_link = base + _query({**kept, "page": number, "page_size": size})
    return PageEnvelope(
        count=page.total, next=next_link, previous=previous_link, results=page.items
    )


def _query(values: dict[str, Any]) -> str:
    return urlencode(values, quote_via=quote)


def _text(value: Any) -> Any:
    return "true" if value is True else value
