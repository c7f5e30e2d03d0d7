"""request.args answers exactly as Werkzeug's own, without raising for an absent name."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.datastructures import ImmutableMultiDict

from opply.entrypoints.app import QueryParameters, Request

PAIRS = [("page", "2"), ("sort", "name"), ("sort", "-price"), ("page_size", "x")]


@pytest.mark.parametrize(
    ("key", "default", "kind"),
    [
        ("page", None, None),
        ("page", None, int),
        ("page_size", 7, int),  # a failed conversion gives the default
        ("sort", None, None),  # the first of several
        ("missing", None, None),
        ("missing", "d", None),
        ("missing", 3, int),
    ],
)
def test_get_answers_as_werkzeugs_own(key: str, default: Any, kind: Any) -> None:
    ours, theirs = QueryParameters(PAIRS), ImmutableMultiDict(PAIRS)
    assert ours.get(key, default, kind) == theirs.get(key, default, kind)


def test_everything_else_is_werkzeugs() -> None:
    ours = QueryParameters(PAIRS)
    assert ours.getlist("sort") == ["name", "-price"]
    assert ours["page"] == "2"
    with pytest.raises(KeyError):
        ours["missing"]


def test_the_app_builds_its_requests_with_it() -> None:
    request = Request.from_values("/api/v1/products/?page=3")
    assert isinstance(request.args, QueryParameters)
    assert request.args.get("page", type=int) == 3
    assert request.args.get("search") is None
