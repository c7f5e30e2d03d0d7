"""The contract's page envelope: count, next, previous, results."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from opply.application.dto import PageRequest
from opply.application.ports import Page


def page_envelope(page: Page[Any], req: PageRequest, filters: dict[str, Any]) -> dict[str, Any]:
    last_page = max(1, -(-page.total // req.page_size))

    def link(number: int) -> str:
        args = {k: _q(v) for k, v in filters.items() if v not in (None, False, "")}
        assert request.endpoint is not None
        return url_for(
            request.endpoint,
            _external=True,
            **(request.view_args or {}),
            **args,
            page=number,
            page_size=req.page_size,
        )

    has_next = req.page < last_page and req.offset + len(page.items) < page.total
    return {
        "count": page.total,
        "next": link(req.page + 1) if has_next else None,
        "previous": link(min(req.page - 1, last_page)) if req.page > 1 else None,
        "results": page.items,
    }


def _q(value: Any) -> Any:
    if value is True:
        return "true"
    return value
