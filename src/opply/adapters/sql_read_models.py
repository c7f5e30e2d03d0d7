"""Read models on SQLAlchemy Core: the API's views straight from plain columns.

The read use cases change nothing, so they need no entities: no identity map, no instance
state, no unit-of-work bookkeeping, which were most of the CPU time of a product or order read.
The statements are the repositories' own (``product_page`` is shared with
``SqlProductRepository.list``), so a view and an entity read the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, bindparam, case, func, select
from sqlalchemy.orm import Session

from opply.adapters.orm import order_lines, orders, product_stats, products
from opply.application.dto import OrderView, ProductView
from opply.application.ports import Page, ProductFilter, ProductSort
from opply.domain.model import OrderLine, OrderStatus

PRODUCT_ORDER: dict[ProductSort, tuple[Any, ...]] = {
    ProductSort.ID: (products.c.id,),
    ProductSort.NAME: (products.c.name, products.c.id),
    ProductSort.NAME_DESC: (products.c.name.desc(), products.c.id),
    ProductSort.PRICE: (products.c.price, products.c.id),
    ProductSort.PRICE_DESC: (products.c.price.desc(), products.c.id),
    ProductSort.STOCK: (products.c.quantity_in_stock, products.c.id),
    ProductSort.STOCK_DESC: (products.c.quantity_in_stock.desc(), products.c.id),
}
PRODUCT_COLUMNS = (products.c.id, products.c.name, products.c.price, products.c.quantity_in_stock)
ORDER_COLUMNS = (orders.c.id, orders.c.status, orders.c.created_at, orders.c.currency)

# The hot statements are built once, with bound parameters: building and keying a statement
# for the cache costs more CPU than running it.
_PRODUCT = select(*PRODUCT_COLUMNS).where(products.c.id == bindparam("id"))
_CUSTOMERS_ORDER = select(*ORDER_COLUMNS).where(
    orders.c.id == bindparam("id"), orders.c.customer_id == bindparam("customer_id")
)
_LINES = (
    select(
        order_lines.c.order_id,
        order_lines.c.product_id,
        order_lines.c.product_name,
        order_lines.c.unit_price,
        order_lines.c.quantity,
    )
    .where(order_lines.c.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(order_lines.c.order_id, order_lines.c.product_id)
)


def lines_of_orders(session: Session, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    """The lines of every order in ``order_ids``, by product id, in one statement."""
    lines: dict[int, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    for order_id, product_id, name, unit_price, quantity in session.execute(
        _LINES, {"order_ids": list(lines)}
    ):
        lines[order_id].append(OrderLine(product_id, name, unit_price, quantity))
    return lines


def product_page(
    session: Session, what: Sequence[Any], flt: ProductFilter, offset: int, limit: int
) -> tuple[Sequence[Any], int]:
    """One page of products as rows of ``what`` (the entity, or columns), and the list's size.

    The unfiltered list by id takes one statement, at about the same cost on every page (see
    ``_whole_catalogue``); a filtered or sorted one counts its matches first.
    """
    if not flt.search and not flt.in_stock and flt.sort == ProductSort.ID:
        return _whole_catalogue(session, what, offset, limit)
    conditions = []
    if flt.search:
        conditions.append(products.c.name.icontains(flt.search, autoescape=True))
    if flt.in_stock:
        conditions.append(products.c.quantity_in_stock > 0)
    total = session.scalar(select(func.count()).select_from(products).where(*conditions)) or 0
    if offset >= total:
        return [], total
    stmt = (
        select(*what)
        .where(*conditions)
        .order_by(*PRODUCT_ORDER[flt.sort])
        .offset(offset)
        .limit(limit)
    )
    return session.execute(stmt).all(), total


def _whole_catalogue_statements(what: Sequence[Any]) -> tuple[Any, Any]:
    """Page 1 and any deeper page of the unfiltered list by id, with ``offset`` and ``limit``
    as bound parameters.

    The size comes from ``product_stats`` (kept by triggers) instead of a COUNT(*) over the
    table, in the same statement (and snapshot) as the page. A deep page first finds its
    first id in the primary key index (an index-only scan), then reads just its own rows,
    instead of reading and dropping every row before it; a page in the second half of the
    catalogue counts its way in from the end, so no page skips more than half the index.
    """
    offset = bindparam("offset", type_=Integer)
    size = select(product_stats.c.product_count).where(product_stats.c.id == 1).scalar_subquery()
    first_page = (
        select(*what, size.label("total")).order_by(products.c.id).limit(bindparam("limit"))
    )
    from_start = (
        select(products.c.id).order_by(products.c.id).offset(offset).limit(1)
    ).scalar_subquery()
    from_end = (
        select(products.c.id).order_by(products.c.id.desc()).offset(size - offset - 1).limit(1)
    ).scalar_subquery()
    first_id = case(
        (offset >= size, None),  # past the end: no page
        (offset * 2 > size, from_end),
        else_=from_start,  # also when product_stats has no row (size is NULL)
    )
    return first_page, first_page.where(products.c.id >= first_id)


# Built once: building and keying these statements cost more CPU than running them.
_CATALOGUE_PAGES: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _whole_catalogue(
    session: Session, what: Sequence[Any], offset: int, limit: int
) -> tuple[Sequence[Any], int]:
    """The unfiltered list by id, in one statement, at about the same cost on every page."""
    key = tuple(what)
    if key not in _CATALOGUE_PAGES:
        _CATALOGUE_PAGES[key] = _whole_catalogue_statements(what)
    first_page, deeper_page = _CATALOGUE_PAGES[key]
    stmt = deeper_page if offset else first_page
    rows = session.execute(stmt, {"offset": offset, "limit": limit}).all()
    if rows and rows[0].total is not None:
        return rows, int(rows[0].total)
    # Past the end (no row to carry the size), or no product_stats row: count apart.
    total = session.scalar(select(product_stats.c.product_count))
    if total is None:
        total = session.scalar(select(func.count()).select_from(products)) or 0
    return rows, int(total)


class SqlProductReadModel:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, product_id: int) -> ProductView | None:
        row = self._session.execute(_PRODUCT, {"id": product_id}).first()
        return ProductView(*row) if row is not None else None

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[ProductView]:
        rows, total = product_page(self._session, PRODUCT_COLUMNS, flt, offset, limit)
        return Page([ProductView(row[0], row[1], row[2], row[3]) for row in rows], total)


class SqlOrderReadModel:
    """An order's row and its lines' rows, in two statements whatever the number of orders."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get_for_customer(self, order_id: int, customer_id: int) -> OrderView | None:
        row = self._session.execute(
            _CUSTOMERS_ORDER, {"id": order_id, "customer_id": customer_id}
        ).first()
        return self._views([row])[0] if row is not None else None

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[OrderView]:
        conditions = [orders.c.customer_id == customer_id]
        if status is not None:
            conditions.append(orders.c.status == status)
        total = (
            self._session.scalar(select(func.count()).select_from(orders).where(*conditions)) or 0
        )
        if offset >= total:
            return Page([], total)
        rows = self._session.execute(
            select(*ORDER_COLUMNS)
            .where(*conditions)
            .order_by(orders.c.created_at.desc(), orders.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        return Page(self._views(rows), total)

    def _views(self, rows: Sequence[Any]) -> list[OrderView]:
        if not rows:
            return []
        lines = lines_of_orders(self._session, [row[0] for row in rows])
        return [
            OrderView.of_parts(order_id, status, created_at, currency, lines[order_id])
            for order_id, status, created_at, currency in rows
        ]
