"""Schemathesis against the app's own OpenAPI document, in-process through WSGI.

Every operation gets valid and invalid requests generated from ``GET /openapi.json``; every
answer must be no server error, carry a documented status code and content type, and match
the documented schema. Customers hit every operation (the staff ones must answer a documented
403); staff hit the staff operations. Failures found are saved in Hypothesis' example database
under ``.hypothesis/`` and replayed first on the next run.

``make fuzz`` runs this with ``FUZZ_MIN_CASES=1000``: the run fails if fewer cases ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from dependency_injector import providers
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opply.adapters.database import make_engine, make_session_factory
from opply.adapters.migrations import runner
from opply.application.dto import NewProduct, NewUser, PlaceOrderCommand
from opply.domain.model import LineRequest
from opply.entrypoints.app import create_app
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container, build_container
from tests.integration.conftest import TEST_SECRET, FastHasher

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "schemathesis")
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "100"))
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "0"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STAFF_OPERATIONS = {
    ("POST", "/api/v1/products/"),
    ("PATCH", "/api/v1/products/{product_id}/"),
    ("POST", "/api/v1/products/{product_id}/restock/"),
}
PASSWORD = "fuzz-password-2026"

fuzz_settings = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    # Hypothesis loads its "ci" profile when CI is set (as in .ci/run): derandomised, with no
    # example database. The fuzz run keeps the database so that found failures replay first.
    derandomize=False,
    database=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@dataclass
class Target:
    app: Flask
    customer_token: str
    staff_token: str
    cases: int = 0


def _seed(container: Container) -> None:
    for n in range(1, 11):
        container.create_product()(
            NewProduct(name=f"Fuzz product {n}", price=Decimal("9.99"), quantity_in_stock=1_000)
        )
    customer = container.create_user()(NewUser(username="fuzz-customer", password=PASSWORD))
    container.create_user()(NewUser(username="fuzz-staff", password=PASSWORD, is_staff=True))
    for product_id in (1, 2, 3):
        container.place_order()(
            PlaceOrderCommand(
                customer_id=customer.id, lines=[LineRequest(product_id=product_id, quantity=1)]
            )
        )


def _token(app: Flask, username: str) -> str:
    answer = app.test_client().post(
        "/api/token/", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.get_json()
    token: str = answer.get_json()["access"]
    return token


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite3'}"
    engine = make_engine(url)
    runner.upgrade(engine)
    app_settings = Settings(
        database_url=url,
        secret_key=TEST_SECRET,
        env="test",
        # Long enough for the whole run; rate limits off so the generated requests reach the
        # views (the limits have their own tests in tests/integration/test_security.py).
        access_token_ttl=timedelta(hours=2),
        ratelimit_enabled=False,
    )
    container = build_container(app_settings)
    container.engine.override(providers.Object(engine))
    container.read_engine.override(providers.Object(engine))
    container.session_factory.override(providers.Object(make_session_factory(engine)))
    container.password_hasher.override(providers.Singleton(FastHasher))
    _seed(container)
    app = create_app(app_settings, container=container)
    found = Target(app, _token(app, "fuzz-customer"), _token(app, "fuzz-staff"))
    yield found
    engine.dispose()
    if MIN_CASES:
        assert found.cases >= MIN_CASES, f"only {found.cases} generated cases ran"
    print(f"\nschemathesis: {found.cases} generated cases")


def _document_app() -> Flask:
    # The document does not depend on data: an app that never touches its database serves it.
    return create_app(Settings(database_url="sqlite://", secret_key=TEST_SECRET, env="test"))


# Loaded at import, so every operation is its own test (pytest item) in the report.
schema = schemathesis.openapi.from_wsgi("/openapi.json", _document_app())


def _is_staff_operation(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in STAFF_OPERATIONS


@schema.parametrize()
@fuzz_settings
def test_every_operation_as_a_customer_answers_as_documented(case: Any, target: Target) -> None:
    target.cases += 1
    case.call_and_validate(
        app=target.app,
        headers={"Authorization": f"Bearer {target.customer_token}"},
        checks=CHECKS,
    )


@schema.include(_is_staff_operation).parametrize()
@fuzz_settings
def test_staff_operations_as_staff_answer_as_documented(case: Any, target: Target) -> None:
    target.cases += 1
    case.call_and_validate(
        app=target.app,
        headers={"Authorization": f"Bearer {target.staff_token}"},
        checks=CHECKS,
    )
