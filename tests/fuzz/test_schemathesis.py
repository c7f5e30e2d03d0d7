"""Schemathesis against the app's own OpenAPI document, in-process through WSGI, on SQLite and
on PostgreSQL (a throwaway database from ``TEST_DATABASE_URL``): PostgreSQL refuses what SQLite
accepts (a NUL character, say), so a run on SQLite alone proves little.

Every operation gets valid and invalid requests generated from ``GET /openapi.json``, as a
customer (the staff operations must answer their documented 403) and, for the staff operations,
as staff. Then the stateful phase follows the document's links (create a product, then read,
change and restock it; place an order, then read, cancel, ship and deliver it) with real ids.

Every one of schemathesis' checks runs except those in ``EXCLUDED``, each with its reason.
Failures found are saved in Hypothesis' example database under ``.hypothesis/`` and replayed
first on the next run. ``make fuzz`` sets ``FUZZ_MIN_CASES=1000``: a database on which fewer
generated cases ran fails the run.
"""

from __future__ import annotations

import os
from collections import Counter
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
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine

from opply.adapters.database import make_engine, make_read_engine, make_session_factory
from opply.adapters.migrations import runner
from opply.application.dto import NewAddress, NewProduct, NewUser, PlaceOrderCommand, ProductChanges
from opply.application.orders import OrderAction
from opply.domain.model import LineRequest
from opply.entrypoints.app import create_app, unwire_app
from opply.entrypoints.config import Settings
from opply.entrypoints.container import Container, build_container
from tests.integration.conftest import TEST_SECRET, FastHasher, empty_postgres_database

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "schemathesis")
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "100"))
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "40"))
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "0"))

# Every check runs but these:
EXCLUDED = [
    # "A request valid by the schema is accepted": the schema says what a request may look
    # like, not what the shop holds. A well-formed order for a product id that does not exist
    # is a 422 `unknown_products`, one for more than the stock a 409 `out_of_stock`, shipping
    # a cancelled order a 409: refusing those is the service's job. Every such answer is still
    # checked against the document (status, content type, schema, headers) by the other checks.
    positive_data_acceptance,
]
STAFF_OPERATIONS = {
    "createProduct",
    "updateProduct",
    "restockProduct",
    "listAllOrders",
    "getAnyOrder",
    "shipOrder",
    "deliverOrder",
    "cancelAnyOrder",
    "getAnyInvoice",
    "listWebhookEndpoints",
    "createWebhookEndpoint",
    "getWebhookEndpoint",
    "updateWebhookEndpoint",
    "deleteWebhookEndpoint",
    "rotateWebhookSecret",
    "listWebhookDeliveries",
    "retryWebhookDelivery",
}
PASSWORD = "fuzz-password-2026"

fuzz_settings = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    # Hypothesis loads its "ci" profile when CI is set (as in .ci/run): derandomised, with no
    # example database. The fuzz run keeps the database so that found failures replay first.
    derandomize=False,
    database=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Target:
    name: str
    app: Flask
    customer_token: str
    staff_token: str
    cases: int = 0


CASES: Counter[str] = Counter()
STATEFUL_CALLS: Counter[str] = Counter()  # by operationId and status: the links were followed
STATEFUL_FAILURES: list[str] = []


def _seed(container: Container) -> None:
    for n in range(1, 11):
        container.create_product()(
            NewProduct(name=f"Fuzz product {n}", price=Decimal("9.99"), quantity_in_stock=1_000)
        )
    customer = container.create_user()(NewUser(username="fuzz-customer", password=PASSWORD))
    container.create_user()(NewUser(username="fuzz-staff", password=PASSWORD, is_staff=True))
    # Product 10 is sold in pairs from 2: the rules answer too.
    container.update_product()(10, ProductChanges(min_order_quantity=2, case_size=2))
    container.add_address()(
        customer.id,
        NewAddress(recipient="Fuzz", line1="1 Lane", postal_code="1", city="Leeds", country="GB"),
    )
    for _ in range(3):  # ids 1 to 3, for the operations on one endpoint
        container.create_webhook()(
            url="https://erp.example.com/hooks", event_types=["order.placed"]
        )
    for product_id in (1, 2, 3):
        placed = container.place_order()(
            PlaceOrderCommand(
                customer_id=customer.id, lines=[LineRequest(product_id=product_id, quantity=1)]
            )
        )
    container.move_order()(placed.order_id, OrderAction.SHIP)  # an invoice to fetch


def _token(app: Flask, username: str) -> str:
    answer = app.test_client().post(
        "/api/token/", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.get_json()
    token: str = answer.get_json()["access"]
    return token


def _serve(name: str, url: str) -> Iterator[Target]:
    engine: Engine = make_engine(url)
    read_engine = make_read_engine(engine)
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
    container.read_engine.override(providers.Object(read_engine))
    container.session_factory.override(providers.Object(make_session_factory(engine)))
    container.password_hasher.override(providers.Singleton(FastHasher))
    _seed(container)
    app = create_app(app_settings, container=container)
    try:
        yield Target(name, app, _token(app, "fuzz-customer"), _token(app, "fuzz-staff"))
    finally:
        unwire_app(app)
        read_engine.dispose()
        engine.dispose()


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite3'}"
        yield from _serve("sqlite", url)
    else:
        with empty_postgres_database("opply_fuzz") as url:
            yield from _serve("postgresql", url)


@pytest.fixture(scope="module", autouse=True)
def enough_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    line = f"schemathesis: generated cases by database: {dict(CASES)}; stateful calls: "
    line += ", ".join(f"{op} {n}" for op, n in sorted(STATEFUL_CALLS.items()))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")
    if MIN_CASES:
        short = {name: n for name, n in CASES.items() if n < MIN_CASES}
        assert not short, f"fewer than {MIN_CASES} generated cases ran on {short}"


def _document_app() -> Flask:
    # The document does not depend on data: an app that never touches its database serves it.
    return create_app(Settings(database_url="sqlite://", secret_key=TEST_SECRET, env="test"))


# Loaded at import, so every operation is its own test (pytest item) in the report.
schema = schemathesis.openapi.from_wsgi("/openapi.json", _document_app())


# Whose token the next call carries. Given through schemathesis' auth hook (not as a plain
# header), so its checks know the credentials are real: `ignored_auth` then resends the call
# without them and with a broken token, and expects a 401.
BEARER = {"token": ""}


@schema.auth(refresh_interval=None)
class Bearer:
    def get(self, case: Any, ctx: Any) -> str:
        return BEARER["token"]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _is_staff_operation(ctx: Any) -> bool:
    return ctx.operation.definition.raw.get("operationId") in STAFF_OPERATIONS


def _run(case: Any, target: Target, token: str) -> None:
    CASES[target.name] += 1
    BEARER["token"] = token
    case.call_and_validate(app=target.app, excluded_checks=EXCLUDED)


@schema.parametrize()
@fuzz_settings
def test_every_operation_as_a_customer_answers_as_documented(case: Any, target: Target) -> None:
    _run(case, target, target.customer_token)


@schema.include(_is_staff_operation).parametrize()
@fuzz_settings
def test_staff_operations_as_staff_answer_as_documented(case: Any, target: Target) -> None:
    _run(case, target, target.staff_token)


# --- the stateful phase: the document's links chain real ids -----------------------------------


class LinkedCalls(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences of calls where one answer's ids feed the next call (the document's links),
    as staff, who may call every operation that takes an id from another's answer."""

    target: Target

    def before_call(self, case: Any) -> None:
        CASES[self.target.name] += 1
        BEARER["token"] = self.target.staff_token

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        operation_id = case.operation.definition.raw.get("operationId")
        STATEFUL_CALLS[f"{operation_id}:{response.status_code}"] += 1

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"app": self.target.app}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        # Failures are collected rather than raised: Hypothesis would replay the sequence to
        # report it, against a database the sequence has changed, and call that flaky
        # instead of showing the failure.
        try:
            case.validate_response(
                response, excluded_checks=EXCLUDED, transport_kwargs=kwargs or None
            )
        except FailureGroup as failure:
            STATEFUL_FAILURES.append(f"{case.method} {case.formatted_path}: {failure}")


def test_linked_operations_chain_real_ids_and_answer_as_documented(target: Target) -> None:
    LinkedCalls.target = target
    STATEFUL_FAILURES.clear()
    calls_before = CASES[target.name]
    wanted = STATEFUL_EXAMPLES * 4  # calls: about four steps a sequence
    suites = 0
    while CASES[target.name] - calls_before < wanted and suites < 20:
        suites += 1
        try:
            LinkedCalls.run(
                settings=settings(
                    fuzz_settings,
                    max_examples=STATEFUL_EXAMPLES,
                    stateful_step_count=8,
                    # A replayed sequence meets a database that earlier sequences changed, so
                    # it may not draw the same steps again: no example database, no shrinking.
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                )
            )
        except Flaky:
            # Hypothesis noticed exactly that (a sequence that drew differently the second
            # time): the suite ends early, as in schemathesis' own runner, and another starts.
            # Failures are never lost this way: validate_response collected them already.
            continue
    assert not STATEFUL_FAILURES, "\n\n".join(STATEFUL_FAILURES[:5])
    assert CASES[target.name] - calls_before >= wanted, f"only {suites} suites ran"
