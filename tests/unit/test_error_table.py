"""The one error table: every error a client can meet has a stable code, a status and a title,
and those agree wherever the same error appears."""

from __future__ import annotations

import re
from collections import defaultdict

import opply.entrypoints.api  # noqa: F401 - every HTTP problem class is defined
from opply.entrypoints.api.problems import error_table


def test_every_error_has_a_snake_case_code_an_error_status_and_a_title() -> None:
    table = error_table()
    assert len(table) >= 25
    for key, cls in table.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code), cls
        assert 400 <= cls.status <= 599, cls
        assert cls.title.strip(), cls
        assert key == f"{cls.status}:{cls.code}"


def test_a_code_keeps_its_title_whatever_status_it_comes_with() -> None:
    titles: dict[str, set[str]] = defaultdict(set)
    for cls in error_table().values():
        titles[cls.code].add(cls.title)
    assert {code: t for code, t in titles.items() if len(t) > 1} == {}


def test_the_contracts_codes_are_all_in_the_table() -> None:
    codes = {cls.code for cls in error_table().values()}
    assert codes >= {
        "out_of_stock",
        "unknown_product",
        "idempotency_key_reused",
        "request_in_progress",
        "order_not_cancellable",
        "invalid_status_transition",
        "sku_taken",
        "invalid_credentials",
        "not_authenticated",
        "invalid_token",
        "permission_denied",
        "not_found",
        "validation_error",
        "bad_request",
        "payload_too_large",
        "method_not_allowed",
        "rate_limited",
        "internal_error",
    }
