"""The in-memory unit of work behaves like a transaction: nothing is seen until commit."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from opply.adapters.memory import InMemoryStore, InMemoryUnitOfWork
from opply.domain.model import Product


def test_changes_left_uncommitted_are_rolled_back_on_exit(
    store: InMemoryStore, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=5)
    with InMemoryUnitOfWork(store) as uow:
        uow.products.add(Product("Rye", Decimal("1.00"), 1))
        product = uow.products.get(pid)
        assert product is not None
        product.take(5)
    assert stock_of(pid) == 5
    assert list(store.tables.products) == [pid]


def test_changes_are_rolled_back_when_the_block_raises(
    store: InMemoryStore, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=5)

    def take_two_then_fail() -> None:
        with InMemoryUnitOfWork(store) as uow:
            product = uow.products.get(pid)
            assert product is not None
            product.take(2)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        take_two_then_fail()
    assert stock_of(pid) == 5


def test_commit_publishes_the_changes_to_the_next_unit_of_work(store: InMemoryStore) -> None:
    with InMemoryUnitOfWork(store) as uow:
        product = Product("Oat flour", Decimal("12.50"), 3)
        uow.products.add(product)
        uow.commit()
    assert store.commits == 1
    with InMemoryUnitOfWork(store) as uow:
        found = uow.products.get(1)
        assert found is not None
        assert (found.name, found.quantity_in_stock) == ("Oat flour", 3)


def test_changes_after_a_commit_are_rolled_back(
    store: InMemoryStore, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=5)
    with InMemoryUnitOfWork(store) as uow:
        product = uow.products.get(pid)
        assert product is not None
        product.take(1)
        uow.commit()
        product = uow.products.get(pid)
        assert product is not None
        product.take(1)
    assert stock_of(pid) == 4


def test_an_uncommitted_unit_of_work_is_invisible_to_the_store_until_commit(
    store: InMemoryStore, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=5)
    with InMemoryUnitOfWork(store) as uow:
        product = uow.products.get(pid)
        assert product is not None
        product.take(3)
        assert stock_of(pid) == 5
        uow.commit()
        assert stock_of(pid) == 2


def test_ids_handed_out_in_a_rolled_back_unit_of_work_are_not_published(
    store: InMemoryStore,
) -> None:
    with InMemoryUnitOfWork(store) as uow:
        uow.products.add(Product("Lost", Decimal("1.00"), 1))
    with InMemoryUnitOfWork(store) as uow:
        kept = Product("Kept", Decimal("1.00"), 1)
        uow.products.add(kept)
        uow.commit()
    assert list(store.tables.products) == [kept.id]
