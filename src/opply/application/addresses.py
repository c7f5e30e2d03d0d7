"""The customer's address book: list, read, add, change and delete their own addresses.

Every change loads the whole book with the customer locked (``book_for_update``), so changes
to one book take turns and ``AddressBook`` keeps exactly one default under any concurrency."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from opply.application.dto import AddressView, NewAddress
from opply.application.unit_of_work import UnitOfWork, retried_if_nothing_kept
from opply.domain.errors import AddressNotFound
from opply.domain.model import Address


def address_view(address: Address) -> AddressView:
    """The view of an address just written: the same fields a read gives."""
    return AddressView(**{name: getattr(address, name) for name in AddressView._fields})


class ListMyAddresses:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int) -> list[AddressView]:
        with self._uow.read() as reads:
            return reads.addresses(customer_id)


class GetMyAddress:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, address_id: int) -> AddressView:
        with self._uow.read() as reads:
            view = reads.address(address_id, customer_id=customer_id)
        if view is None:
            raise AddressNotFound(address_id)
        return view


class AddAddress:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, customer_id: int, cmd: NewAddress) -> AddressView:
        fields = asdict(cmd)
        make_default = fields.pop("is_default")
        address = Address(customer_id=customer_id, **fields)
        with self._uow.write() as uow:
            book = uow.addresses.book_for_update(customer_id)
            book.add(address, make_default=make_default)
            uow.addresses.add(address)
            uow.commit()
        return address_view(address)


class UpdateAddress:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, customer_id: int, address_id: int, changes: dict[str, Any]) -> AddressView:
        with self._uow.write() as uow:
            book = uow.addresses.book_for_update(customer_id)
            address = book.find(address_id)
            if address is None:
                raise AddressNotFound(address_id)
            book.update(address, changes)
            uow.commit()
        return address_view(address)


class DeleteAddress:
    """Orders already placed keep their copy; deleting the default moves it to the most
    recently added address left."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, customer_id: int, address_id: int) -> None:
        with self._uow.write() as uow:
            book = uow.addresses.book_for_update(customer_id)
            address = book.find(address_id)
            if address is None:
                raise AddressNotFound(address_id)
            book.remove(address)
            uow.addresses.remove(address)
            uow.commit()
