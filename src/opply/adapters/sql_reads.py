"""The read unit of work on SQLAlchemy Core: each read is one statement on a plain connection.

No entities, no identity map, no session: a page of products or of orders is one statement
whose rows become the application's views directly. The columns of a view's select are taken
from the view's own ``_fields``, so a field added to a view is read without touching this file
(as long as the table has a column of that name). Statements are built once, with bound
parameters: building and keying a statement for SQLAlchemy's cache cost more CPU than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    Integer,
    Select,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
)

from opply.adapters.database import is_unavailable
from opply.adapters.orm import (
    addresses,
    delivery_column,
    order_lines,
    orders,
    product_stats,
    products,
    refresh_tokens,
    users,
)
from opply.application.dto import (
    LINE_FIELDS,
    AddressView,
    Credentials,
    CustomerView,
    OrderFilter,
    OrderLineView,
    OrderView,
    Page,
    PageRequest,
    ProductFilter,
    ProductSort,
    ProductView,
    UserAccess,
    UserFilter,
    UserView,
    order_line_view,
    order_view,
)
from opply.application.unit_of_work import ReadUnitOfWork, StoreUnavailable, UnitOfWorkError
from opply.domain.model import DELIVERY_FIELDS, DeliveryAddress

PRODUCT_COLUMNS = tuple(products.c[name] for name in ProductView._fields)
PRODUCT_ORDER: dict[ProductSort, tuple[Any, ...]] = {
    ProductSort.ID: (products.c.id,),
    ProductSort.NAME: (products.c.name, products.c.id),
    ProductSort.NAME_DESC: (products.c.name.desc(), products.c.id),
    ProductSort.PRICE: (products.c.price, products.c.id),
    ProductSort.PRICE_DESC: (products.c.price.desc(), products.c.id),
    ProductSort.STOCK: (products.c.quantity_in_stock, products.c.id),
    ProductSort.STOCK_DESC: (products.c.quantity_in_stock.desc(), products.c.id),
}
USER_COLUMNS = tuple(users.c[name] for name in UserView._fields)

_PRODUCT = select(*PRODUCT_COLUMNS).where(products.c.id == bindparam("id"))
_USER_ACCESS = select(
    users.c.username,
    users.c.is_active,
    users.c.is_staff,
    users.c.token_version,
    exists()
    .where(
        refresh_tokens.c.family_id == bindparam("family_id"),
        refresh_tokens.c.revoked_at.is_not(None),
    )
    .label("login_revoked"),
).where(users.c.id == bindparam("id"))
_CREDENTIALS = select(*(users.c[name] for name in Credentials._fields)).where(
    users.c.username == bindparam("username")
)
_USER = select(*USER_COLUMNS).where(users.c.username == bindparam("username"))
_ADDRESSES = (
    select(*(addresses.c[name] for name in AddressView._fields))
    .where(addresses.c.customer_id == bindparam("customer_id"))
    .order_by(addresses.c.is_default.desc(), addresses.c.id.desc())
)
_ADDRESS = _ADDRESSES.where(addresses.c.id == bindparam("id"))


def _whole_catalogue_statements() -> tuple[Select[Any], Select[Any]]:
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
        select(*PRODUCT_COLUMNS, size.label("total"))
        .order_by(products.c.id)
        .limit(bindparam("limit"))
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


_CATALOGUE_FIRST_PAGE, _CATALOGUE_DEEP_PAGE = _whole_catalogue_statements()
_CATALOGUE_SIZE = select(product_stats.c.product_count)
_PRODUCT_COUNT = select(func.count()).select_from(products)


def _order_conditions(flt: OrderFilter) -> list[Any]:
    conditions: list[Any] = []
    if flt.customer_id is not None:
        conditions.append(orders.c.customer_id == bindparam("customer_id"))
    if flt.customer_username is not None:
        conditions.append(
            orders.c.customer_id
            == select(users.c.id).where(users.c.username == bindparam("username")).scalar_subquery()
        )
    if flt.status is not None:
        conditions.append(orders.c.status == bindparam("status", type_=orders.c.status.type))
    return conditions


def _order_parameters(flt: OrderFilter) -> dict[str, Any]:
    return {
        "customer_id": flt.customer_id,
        "username": flt.customer_username,
        "status": flt.status,
    }


def _orders_with_lines(picked: Any, *extra: Any) -> Select[Any]:
    """The picked orders (a subquery of order columns), each with its customer and one row per
    line, newest first and lines by product id: a page of orders in one statement."""
    return (
        select(
            *picked.c,
            users.c.username,
            *(order_lines.c[name] for name in LINE_FIELDS),
            *extra,
        )
        .join(users, users.c.id == picked.c.customer_id)
        .outerjoin(order_lines, order_lines.c.order_id == picked.c.id)
        .order_by(picked.c.created_at.desc(), picked.c.id.desc(), order_lines.c.product_id)
    )


_ORDER_COLUMNS = (
    orders.c.id,
    orders.c.status,
    orders.c.created_at,
    orders.c.shipped_at,
    orders.c.delivered_at,
    orders.c.cancelled_at,
    orders.c.currency,
    orders.c.customer_id,
    orders.c.invoice_number,
    *(orders.c[delivery_column(name)] for name in DELIVERY_FIELDS),
)
_ORDER_PAGES: dict[tuple[bool, bool, bool], tuple[Select[Any], Select[Any]]] = {}
_ORDERS_BY_ID: dict[bool, Select[Any]] = {}


def _order_page_statements(flt: OrderFilter) -> tuple[Select[Any], Select[Any]]:
    """(page with the total, the total alone), for this shape of filter; built once per shape."""
    shape = (flt.customer_id is not None, flt.customer_username is not None, flt.status is not None)
    if shape not in _ORDER_PAGES:
        conditions = _order_conditions(flt)
        count = select(func.count()).select_from(orders).where(*conditions)
        picked = (
            select(*_ORDER_COLUMNS)
            .where(*conditions)
            .order_by(orders.c.created_at.desc(), orders.c.id.desc())
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
            .subquery("picked")
        )
        page = _orders_with_lines(picked, count.scalar_subquery().label("total"))
        _ORDER_PAGES[shape] = (page, count)
    return _ORDER_PAGES[shape]


def _order_statement(for_customer: bool) -> Select[Any]:
    if for_customer not in _ORDERS_BY_ID:
        conditions = [orders.c.id == bindparam("id")]
        if for_customer:
            conditions.append(orders.c.customer_id == bindparam("customer_id"))
        picked = select(*_ORDER_COLUMNS).where(*conditions).subquery("picked")
        _ORDERS_BY_ID[for_customer] = _orders_with_lines(picked)
    return _ORDERS_BY_ID[for_customer]


def _delivery_address(row: Any) -> DeliveryAddress | None:
    values = {name: getattr(row, delivery_column(name)) for name in DELIVERY_FIELDS}
    if all(value is None for value in values.values()):
        return None
    return DeliveryAddress(**values)


def _order_views(rows: Sequence[Any]) -> list[OrderView]:
    """Rows of ``_orders_with_lines`` (one per line, an order's rows together) as views."""
    views: list[OrderView] = []
    lines: list[OrderLineView] = []
    for index, row in enumerate(rows):
        if row.product_id is not None:
            lines.append(order_line_view(**{name: getattr(row, name) for name in LINE_FIELDS}))
        if index + 1 == len(rows) or rows[index + 1].id != row.id:
            views.append(
                order_view(
                    id=row.id,
                    status=row.status,
                    created_at=row.created_at,
                    shipped_at=row.shipped_at,
                    delivered_at=row.delivered_at,
                    cancelled_at=row.cancelled_at,
                    currency=row.currency,
                    lines=lines,
                    delivery_address=_delivery_address(row),
                    invoice_number=row.invoice_number,
                    customer=CustomerView(id=row.customer_id, username=row.username),
                )
            )
            lines = []
    return views


class SqlReadUnitOfWork(ReadUnitOfWork):
    """Reads on one connection of the read engine, which runs nothing but SELECTs.

    ``bind`` is the read engine (a connection per unit of work, given back at the end), or a
    connection the caller owns and keeps (the tests' transaction, rolled back after each test).
    """

    def __init__(self, bind: Engine | Connection) -> None:
        self._bind = bind
        self._connection: Connection | None = None
        self._may_retry = False

    def _begin(self) -> None:
        bind = self._bind
        self._connection = self._connect(bind) if isinstance(bind, Engine) else bind
        self._may_retry = isinstance(bind, Engine)

    def _end(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection is not self._bind:
            connection.close()

    @staticmethod
    def _connect(engine: Engine) -> Connection:
        try:
            return engine.connect()
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable("the database cannot be reached") from error
            raise

    def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        """Run a read. Anything but a SELECT is refused before it reaches the database: on
        PostgreSQL the read engine is in autocommit, where a write would be kept at once.

        A read whose connection is lost on the way runs once more on a new connection (a
        SELECT changes nothing, so running it twice is harmless); a second loss, or a database
        that cannot be reached, is ``StoreUnavailable``."""
        if not getattr(statement, "is_select", False):
            raise UnitOfWorkError(f"a read unit of work runs only SELECTs, not {statement!r}")
        if self._connection is None:
            raise UnitOfWorkError("read outside its unit of work (use `with uow.read()`)")
        try:
            return self._connection.execute(statement, parameters)
        except Exception as error:
            if not is_unavailable(error):
                raise
            if not self._may_retry:
                raise StoreUnavailable("the connection to the database was lost") from error
            self._may_retry = False
        self._connection.close()  # gives the broken connection back to be discarded
        self._connection = None
        assert isinstance(self._bind, Engine)
        self._connection = self._connect(self._bind)
        try:
            return self._connection.execute(statement, parameters)
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable("the connection to the database was lost") from error
            raise

    # --- products ------------------------------------------------------------------------

    def product(self, product_id: int) -> ProductView | None:
        row = self.execute(_PRODUCT, {"id": product_id}).first()
        return ProductView._make(row) if row is not None else None

    def product_page(self, flt: ProductFilter, page: PageRequest) -> Page[ProductView]:
        if not flt.search and not flt.in_stock and flt.sort == ProductSort.ID:
            return self._whole_catalogue(page)
        conditions = []
        if flt.search:
            conditions.append(
                or_(
                    products.c.name.icontains(flt.search, autoescape=True),
                    products.c.sku.icontains(flt.search, autoescape=True),
                )
            )
        if flt.in_stock:
            conditions.append(products.c.quantity_in_stock > 0)
        total = self.execute(_PRODUCT_COUNT.where(*conditions)).scalar_one()
        if page.offset >= total:
            return Page(items=[], total=total)
        rows = self.execute(
            select(*PRODUCT_COLUMNS)
            .where(*conditions)
            .order_by(*PRODUCT_ORDER[flt.sort])
            .offset(page.offset)
            .limit(page.page_size)
        )
        return Page(items=[ProductView._make(row) for row in rows], total=total)

    def _whole_catalogue(self, page: PageRequest) -> Page[ProductView]:
        """The unfiltered list by id, in one statement, at about the same cost on every page."""
        statement = _CATALOGUE_DEEP_PAGE if page.offset else _CATALOGUE_FIRST_PAGE
        rows = self.execute(statement, {"offset": page.offset, "limit": page.page_size}).all()
        if rows and rows[0].total is not None:
            # The page's rows are the view's fields followed by the catalogue's size.
            return Page(items=[ProductView._make(row[:-1]) for row in rows], total=rows[0].total)
        # Past the end (no row to carry the size), or no product_stats row: count apart.
        total = self.execute(_CATALOGUE_SIZE).scalar()
        if total is None:
            total = self.execute(_PRODUCT_COUNT).scalar_one()
        return Page(items=[ProductView._make(row[:-1]) for row in rows], total=int(total))

    # --- orders --------------------------------------------------------------------------

    def order(self, order_id: int, *, customer_id: int | None = None) -> OrderView | None:
        rows = self.execute(
            _order_statement(customer_id is not None), {"id": order_id, "customer_id": customer_id}
        ).all()
        return _order_views(rows)[0] if rows else None

    def order_page(self, flt: OrderFilter, page: PageRequest) -> Page[OrderView]:
        statement, count = _order_page_statements(flt)
        parameters = _order_parameters(flt)
        rows = self.execute(
            statement, {**parameters, "offset": page.offset, "limit": page.page_size}
        ).all()
        if rows:
            return Page(items=_order_views(rows), total=rows[0].total)
        return Page(items=[], total=self.execute(count, parameters).scalar_one())

    # --- addresses -----------------------------------------------------------------------

    def addresses(self, customer_id: int) -> list[AddressView]:
        rows = self.execute(_ADDRESSES, {"customer_id": customer_id})
        return [AddressView._make(row) for row in rows]

    def address(self, address_id: int, *, customer_id: int) -> AddressView | None:
        row = self.execute(_ADDRESS, {"customer_id": customer_id, "id": address_id}).first()
        return AddressView._make(row) if row is not None else None

    # --- users ---------------------------------------------------------------------------

    def user_access(self, user_id: int, *, login: str) -> UserAccess | None:
        row = self.execute(_USER_ACCESS, {"id": user_id, "family_id": login}).first()
        return UserAccess._make(row) if row is not None else None

    def credentials(self, username: str) -> Credentials | None:
        row = self.execute(_CREDENTIALS, {"username": username}).first()
        return Credentials._make(row) if row is not None else None

    def user(self, username: str) -> UserView | None:
        row = self.execute(_USER, {"username": username}).first()
        return UserView._make(row) if row is not None else None

    def user_page(self, flt: UserFilter, page: PageRequest) -> Page[UserView]:
        conditions = []
        if flt.search:
            conditions.append(users.c.username.icontains(flt.search, autoescape=True))
        total = self.execute(select(func.count()).select_from(users).where(*conditions))
        count = total.scalar_one()
        if page.offset >= count:
            return Page(items=[], total=count)
        rows = self.execute(
            select(*USER_COLUMNS)
            .where(*conditions)
            .order_by(users.c.username)
            .offset(page.offset)
            .limit(page.page_size)
        )
        return Page(items=[UserView._make(row) for row in rows], total=count)
