"""A use case that writes runs once more when the store lost its connection before the commit
(nothing was kept), and never when the commit itself was lost (something may have been kept).
The SQL units of work raise these losses on real PostgreSQL in
tests/integration/test_connection_loss.py; here a unit of work double raises them on demand.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

import pytest

from opply.adapters.memory import (
    FixedClock,
    InMemoryStore,
    InMemoryUnitOfWork,
    InMemoryWriteUnitOfWork,
)
from opply.application import auth, orders, products, users
from opply.application.dto import PlaceOrderCommand
from opply.application.orders import PlaceOrder
from opply.application.unit_of_work import StoreUnavailable
from opply.domain.model import LineRequest
from tests.unit.conftest import CURRENCY


class LosingUnitOfWork(InMemoryUnitOfWork):
    """Loses the connection on the next ``losses`` commits, before or during the commit."""

    def __init__(self, store: InMemoryStore, losses: int, *, while_committing: bool) -> None:
        super().__init__(store)
        self.losses = losses
        self.while_committing = while_committing
        self.attempts = 0

    def write(self) -> InMemoryWriteUnitOfWork:
        owner = self

        class Losing(InMemoryWriteUnitOfWork):
            def _commit(self) -> None:
                owner.attempts += 1
                if owner.losses > 0:
                    owner.losses -= 1
                    if owner.while_committing:
                        super()._commit()  # kept, but the answer never arrives
                    raise StoreUnavailable("lost", outcome_unknown=owner.while_committing)
                super()._commit()

        return Losing(self.store)


def _place(uow: InMemoryUnitOfWork, clock: FixedClock, key: str | None = None) -> int:
    placed = PlaceOrder(uow, clock, currency=CURRENCY)(
        PlaceOrderCommand(
            customer_id=1, lines=[LineRequest(product_id=1, quantity=2)], idempotency_key=key
        )
    )
    return placed.order_id


@pytest.fixture
def stocked(add_product: Callable[..., int], add_user: Callable[..., int]) -> None:
    add_user("ana")
    add_product(stock=10)


@pytest.mark.usefixtures("stocked")
def test_a_write_lost_before_commit_runs_once_more_and_is_kept_once(
    store: InMemoryStore, clock: FixedClock, stock_of: Callable[[int], int]
) -> None:
    uow = LosingUnitOfWork(store, losses=1, while_committing=False)
    _place(uow, clock)
    assert uow.attempts == 2
    assert stock_of(1) == 8
    assert len(store.tables.orders) == 1


@pytest.mark.usefixtures("stocked")
def test_a_second_loss_is_the_callers_to_retry(
    store: InMemoryStore, clock: FixedClock, stock_of: Callable[[int], int]
) -> None:
    uow = LosingUnitOfWork(store, losses=2, while_committing=False)
    with pytest.raises(StoreUnavailable):
        _place(uow, clock)
    assert uow.attempts == 2
    assert stock_of(1) == 10


@pytest.mark.usefixtures("stocked")
def test_a_commit_lost_on_its_way_is_never_run_again_and_the_key_makes_the_retry_safe(
    store: InMemoryStore, clock: FixedClock, stock_of: Callable[[int], int]
) -> None:
    uow = LosingUnitOfWork(store, losses=1, while_committing=True)
    with pytest.raises(StoreUnavailable) as lost:
        _place(uow, clock, key="tap-1")
    assert lost.value.outcome_unknown
    assert uow.attempts == 1  # not run again by the service: it may have been kept
    assert stock_of(1) == 8  # ... and here it was

    again = _place(uow, clock, key="tap-1")  # the client's retry with its key
    assert len(store.tables.orders) == 1
    assert list(store.tables.orders) == [again]
    assert stock_of(1) == 8


def _opens_a_write(method: Callable[..., object]) -> bool:
    source = inspect.getsource(method)
    tree = ast.parse(inspect.cleandoc("\n" + source) if source.startswith(" ") else source)
    return any(isinstance(node, ast.Attribute) and node.attr == "write" for node in ast.walk(tree))


@pytest.mark.parametrize("module", [auth, orders, products, users], ids=lambda m: m.__name__)
def test_every_use_case_that_writes_is_retried_if_nothing_was_kept(module: object) -> None:
    writers = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__  # type: ignore[attr-defined]
        and "__call__" in vars(cls)
        and _opens_a_write(inspect.unwrap(vars(cls)["__call__"]))
    ]
    assert writers, "the scan found no use case that writes"
    unwrapped = [
        c.__name__ for c in writers if not getattr(c.__call__, "retried_if_nothing_kept", False)
    ]
    assert unwrapped == []
