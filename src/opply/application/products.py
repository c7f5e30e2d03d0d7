"""Catalogue use cases: browse (anyone), create, change and restock (staff)."""

from __future__ import annotations

from dataclasses import asdict

from opply.application.dto import (
    NewProduct,
    Page,
    PageRequest,
    ProductChanges,
    ProductFilter,
    ProductView,
)
from opply.application.unit_of_work import UnitOfWork, retried_if_nothing_kept
from opply.domain.errors import ProductNotFound
from opply.domain.model import Product


def product_view(product: Product) -> ProductView:
    """The view of a product just written: the same fields a read would give."""
    return ProductView(**{name: getattr(product, name) for name in ProductView._fields})


class ListProducts:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, flt: ProductFilter, page: PageRequest) -> Page[ProductView]:
        with self._uow.read() as reads:
            return reads.product_page(flt, page)


class GetProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, product_id: int) -> ProductView:
        with self._uow.read() as reads:
            view = reads.product(product_id)
        if view is None:
            raise ProductNotFound(product_id)
        return view


class CreateProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, cmd: NewProduct) -> ProductView:
        product = Product(**asdict(cmd))
        with self._uow.write() as uow:
            uow.products.add(product)
            uow.commit()
        return product_view(product)


class UpdateProduct:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, product_id: int, changes: ProductChanges) -> ProductView:
        with self._uow.write() as uow:
            product = uow.products.get_for_update([product_id]).get(product_id)
            if product is None:
                raise ProductNotFound(product_id)
            product.update(**changes.given())
            uow.commit()
        return product_view(product)


class RestockProduct:
    """Add a delivery to stock; the row lock makes it safe beside concurrent orders."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(self, product_id: int, quantity: int) -> ProductView:
        with self._uow.write() as uow:
            product = uow.products.get_for_update([product_id]).get(product_id)
            if product is None:
                raise ProductNotFound(product_id)
            product.restock(quantity)
            uow.commit()
        return product_view(product)
