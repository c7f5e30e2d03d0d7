"""Contract tests of the address book and the invoice counter: the same tests run against the
in-memory twins and the SQL adapters (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from opply.application.dto import AddressView
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import Address, DeliveryAddress
from tests.integration.contract import add_user


def _address(customer_id: int, recipient: str, **changes: Any) -> Address:
    fields: dict[str, Any] = {
        "recipient": recipient,
        "line1": "12 Mill Lane",
        "postal_code": "EC1A 1BB",
        "city": "London",
        "country": "gb",
        **changes,
    }
    return Address(customer_id=customer_id, **fields)


def add(uow: UnitOfWork, customer_id: int, recipient: str, *, default: bool = False) -> int:
    address = _address(customer_id, recipient)
    with uow.write() as tx:
        book = tx.addresses.book_for_update(customer_id)
        book.add(address, make_default=default)
        tx.addresses.add(address)
        tx.commit()
    assert address.id is not None
    return address.id


def recipients(uow: UnitOfWork, customer_id: int) -> list[tuple[str, bool]]:
    with uow.read() as reads:
        return [(a.recipient, a.is_default) for a in reads.addresses(customer_id)]


def test_an_address_view_shows_its_columns_and_only_to_its_customer(
    contract_uow: UnitOfWork,
) -> None:
    ann, bob = add_user(contract_uow), add_user(contract_uow)
    address = _address(
        ann, "Jane Baker", label="Warehouse", company="Baker & Co", phone="+44 (20) 7946-0000"
    )
    with contract_uow.write() as tx:
        tx.addresses.book_for_update(ann).add(address)
        tx.addresses.add(address)
        tx.commit()
    assert address.id is not None
    with contract_uow.read() as reads:
        assert reads.address(address.id, customer_id=ann) == AddressView(
            id=address.id,
            label="Warehouse",
            recipient="Jane Baker",
            company="Baker & Co",
            line1="12 Mill Lane",
            line2="",
            postal_code="EC1A 1BB",
            city="London",
            country="GB",
            phone="+44 (20) 7946-0000",
            is_default=True,
        )
        assert reads.address(address.id, customer_id=bob) is None
        assert reads.addresses(bob) == []


def test_a_book_lists_the_default_first_then_the_newest(contract_uow: UnitOfWork) -> None:
    ann = add_user(contract_uow)
    add(contract_uow, ann, "first")
    add(contract_uow, ann, "second")
    add(contract_uow, ann, "third")
    assert recipients(contract_uow, ann) == [
        ("first", True),
        ("third", False),
        ("second", False),
    ]


def test_moving_the_default_to_an_older_address_keeps_one_default(
    contract_uow: UnitOfWork,
) -> None:
    ann = add_user(contract_uow)
    first = add(contract_uow, ann, "first")
    add(contract_uow, ann, "second", default=True)
    with contract_uow.write() as tx:
        book = tx.addresses.book_for_update(ann)
        address = book.find(first)
        assert address is not None
        book.update(address, {"is_default": True, "city": "Leeds"})
        tx.commit()
    assert recipients(contract_uow, ann) == [("first", True), ("second", False)]


def test_removing_the_default_makes_the_newest_left_the_default(
    contract_uow: UnitOfWork,
) -> None:
    ann = add_user(contract_uow)
    first = add(contract_uow, ann, "first")
    add(contract_uow, ann, "second")
    add(contract_uow, ann, "third")
    with contract_uow.write() as tx:
        book = tx.addresses.book_for_update(ann)
        address = book.find(first)
        assert address is not None
        book.remove(address)
        tx.addresses.remove(address)
        tx.commit()
    assert recipients(contract_uow, ann) == [("third", True), ("second", False)]


def test_an_order_finds_the_named_address_or_the_default_and_only_the_customers_own(
    contract_uow: UnitOfWork,
) -> None:
    ann, bob = add_user(contract_uow), add_user(contract_uow)
    with contract_uow.write() as tx:
        assert tx.addresses.for_order(ann, None) is None  # an empty book
    first = add(contract_uow, ann, "first")
    second = add(contract_uow, ann, "second")
    with contract_uow.write() as tx:
        default = tx.addresses.for_order(ann, None)
        named = tx.addresses.for_order(ann, second)
        assert default is not None
        assert default.id == first
        assert named is not None
        assert named.id == second
        assert named.delivery() == DeliveryAddress(
            recipient="second",
            company="",
            line1="12 Mill Lane",
            line2="",
            postal_code="EC1A 1BB",
            city="London",
            country="GB",
            phone="",
        )
        assert tx.addresses.for_order(bob, first) is None
        assert tx.addresses.for_order(ann, 987_654) is None


def test_invoice_numbers_count_from_one_each_year_and_a_rollback_gives_one_back(
    contract_uow: UnitOfWork,
) -> None:
    with contract_uow.write() as tx:
        assert [tx.invoice_numbers.next(2031) for _ in range(3)] == [1, 2, 3]
        assert tx.invoice_numbers.next(2032) == 1
        tx.commit()
    with contract_uow.write() as tx:
        assert tx.invoice_numbers.next(2031) == 4
        # left without a commit: rolled back
    with contract_uow.write() as tx:
        assert tx.invoice_numbers.next(2031) == 4
        tx.commit()


@pytest.mark.parametrize("make_default", [False, True])
def test_a_new_address_becomes_the_default_only_when_first_or_asked(
    contract_uow: UnitOfWork, make_default: bool
) -> None:
    ann = add_user(contract_uow)
    add(contract_uow, ann, "first")
    add(contract_uow, ann, "second", default=make_default)
    expected = [("second", True), ("first", False)] if make_default else None
    assert recipients(contract_uow, ann) == (expected or [("first", True), ("second", False)])
