"""Catalogue use cases: browse (anyone), create, change and restock (staff)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opply.application.dto import PageRequest, ProductView
from opply.application.ports import Page, ProductFilter
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import ProductNotFound
from opply.domain.model import Product


class ListProducts:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, flt: ProductFilter, page: PageRequest) -> Page[ProductView]:
        with self._uow as uow:
            return uow.product_views.list(flt, page.offset, page.page_size)


class GetProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, product_id: int) -> ProductView:
        with self._uow as uow:
            view = uow.product_views.get(product_id)
            if view is None:
                raise ProductNotFound(product_id)
            return view


@dataclass(frozen=True)
class NewProduct:
    name: str
    price: Decimal
    quantity_in_stock: int = 0


class CreateProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, cmd: NewProduct) -> ProductView:
        product = Product(cmd.name, cmd.price, cmd.quantity_in_stock)
        with self._uow.for_write() as uow:
            uow.products.add(product)
            uow.commit()
            return ProductView.of(product)


@dataclass(frozen=True)
class ProductChanges:
    """Only the fields given (not None) change."""

    name: str | None = None
    price: Decimal | None = None
    quantity_in_stock: int | None = None


class UpdateProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, product_id: int, changes: ProductChanges) -> ProductView:
        with self._uow.for_write() as uow:
            found = uow.products.get_for_update([product_id])
            product = found.get(product_id)
            if product is None:
                raise ProductNotFound(product_id)
            if changes.name is not None:
                product.rename(changes.name)
            if changes.price is not None:
                product.reprice(changes.price)
            if changes.quantity_in_stock is not None:
                product.set_stock(changes.quantity_in_stock)
            uow.commit()
            return ProductView.of(product)


class RestockProduct:
    """Add a delivery to stock; the row lock makes it safe beside concurrent orders."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, product_id: int, quantity: int) -> ProductView:
        with self._uow.for_write() as uow:
            product = uow.products.get_for_update([product_id]).get(product_id)
            if product is None:
                raise ProductNotFound(product_id)
            product.restock(quantity)
            uow.commit()
            return ProductView.of(product)
