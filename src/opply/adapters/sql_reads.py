"""The read unit of work on SQLAlchemy Core: each read is one statement on a plain connection.

No entities, no identity map, no session: a page of products or of orders is one statement
whose rows become the application's views directly. The columns of a view's select are taken
from the view's own ``_fields``, so a field added to a view is read without touching this file
(as long as the table has a column of that name). Statements are built once, with bound
parameters: building and keying a statement for SQLAlchemy's cache cost more CPU than running it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
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
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from opply.adapters.database import is_unavailable
from opply.adapters.orm import (
    Money,
    addresses,
    delivery_column,
    order_events,
    order_lines,
    orders,
    product_stats,
    products,
    refresh_tokens,
    users,
    webhook_deliveries,
    webhook_endpoints,
)
from opply.application.dto import (
    LINE_FIELDS,
    NO_SALES,
    AddressView,
    Credentials,
    CustomerView,
    DeliveryStatus,
    EndpointTrouble,
    ExportFilter,
    ExportLine,
    FeedPosition,
    OrderEventView,
    OrderFilter,
    OrderLineView,
    OrdersToShip,
    OrderToShip,
    OrderView,
    Page,
    PageRequest,
    ProductFilter,
    ProductSort,
    ProductView,
    Sales,
    UserAccess,
    UserFilter,
    UserView,
    export_line,
    order_line_view,
    order_view,
)
from opply.application.plain import from_plain
from opply.application.unit_of_work import ReadUnitOfWork, StoreUnavailable, UnitOfWorkError
from opply.domain.model import DELIVERY_FIELDS, DeliveryAddress, OrderStatus

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


def _feed_statements() -> dict[str, Select[Any]]:
    """A customer's events after a position, by dialect. On PostgreSQL only events of
    transactions older than every transaction still running (the snapshot's xmin) are read: a
    running one may yet commit events before them in (tx_id, id) order, and the reader would
    have passed them (docs/architecture.md, "Order events"). On SQLite writers take turns, so
    every committed event is final."""
    events = order_events.c
    after = select(events.id, events.tx_id, events.type, events.occurred_at, events.payload).where(
        events.customer_id == bindparam("customer_id"),
        tuple_(events.tx_id, events.id) > tuple_(bindparam("tx"), bindparam("id")),
    )
    horizon: ColumnElement[int] = literal_column(
        "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", type_=BigInteger()
    )
    return {
        "postgresql": after.where(events.tx_id < horizon)
        .order_by(events.tx_id, events.id)
        .limit(bindparam("limit")),
        "sqlite": after.order_by(events.tx_id, events.id).limit(bindparam("limit")),
    }


_FEED = _feed_statements()


def _event_views(rows: Sequence[Any]) -> list[OrderEventView]:
    return [
        OrderEventView(
            id=row.id,
            type=row.type,
            occurred_at=row.occurred_at,
            order=from_plain(OrderView, row.payload),
            position=FeedPosition(tx=row.tx_id, id=row.id),
        )
        for row in rows
    ]


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


# --- the admin's dashboard and the orders export ------------------------------------------------


class _LineVat(FunctionElement[Decimal]):
    """A line's VAT in the store's money, rounded to the cent half up on its own, as
    ``domain.model.line_amounts`` rounds it: ``_LineVat(net, rate)``."""

    type = Money()
    name = "line_vat"
    inherit_cache = True


@compiles(_LineVat)
def _line_vat(element: _LineVat, compiler: SQLCompiler, **kw: Any) -> str:
    # NUMERIC: exact products; ROUND of a positive numeric rounds half away from zero (up).
    net, rate = (compiler.process(c, **kw) for c in element.clauses)
    return f"ROUND({net} * {rate} * 0.01, 2)"


@compiles(_LineVat, "sqlite")
def _line_vat_sqlite(element: _LineVat, compiler: SQLCompiler, **kw: Any) -> str:
    # Integer hundredths (Hundredths): cents x hundredths of a percent is 1/10000 of a cent;
    # adding half of that before the integer division rounds half up.
    net, rate = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({net} * {rate} + 5000) / 10000)"


_LINE_NET = order_lines.c.unit_price * order_lines.c.quantity
_LINE_VAT = _LineVat(_LINE_NET, order_lines.c.vat_rate)


def _money_sum(amount: Any) -> Any:
    return type_coerce(func.coalesce(func.sum(amount), 0), Money())


def _stored_or_summed(stored: Any, order_id: Any, amount: Any) -> Any:
    """An order's stored total (``orders.subtotal`` or ``vat_total``), or, on a row an instance
    of the release before 0008 wrote without it, the sum of its lines (a correlated subquery,
    a few probes of the lines' primary key, run only where the stored total is NULL: COALESCE
    stops at its first value that is not NULL)."""
    summed = select(_money_sum(amount)).where(order_lines.c.order_id == order_id)
    return type_coerce(func.coalesce(stored, summed.scalar_subquery()), Money())


def _to_ship_statement() -> Select[Any]:
    """The oldest placed orders (an index range on status, created_at), each with its
    customer, delivery city and totals, and the count of every placed order, in one
    statement."""
    placed = orders.c.status == OrderStatus.PLACED
    picked = (
        select(
            orders.c.id,
            orders.c.created_at,
            orders.c.currency,
            orders.c.customer_id,
            orders.c.delivery_city,
            orders.c.subtotal,
            orders.c.vat_total,
        )
        .where(placed)
        .order_by(orders.c.created_at, orders.c.id)
        .limit(bindparam("limit"))
        .subquery("picked")
    )
    waiting = select(func.count()).select_from(orders).where(placed).scalar_subquery()
    return (
        select(
            picked.c.id,
            picked.c.created_at,
            users.c.username.label("customer"),
            picked.c.delivery_city,
            picked.c.currency,
            _stored_or_summed(picked.c.subtotal, picked.c.id, _LINE_NET).label("subtotal"),
            _stored_or_summed(picked.c.vat_total, picked.c.id, _LINE_VAT).label("vat_total"),
            waiting.label("waiting"),
        )
        .join(users, users.c.id == picked.c.customer_id)
        .order_by(picked.c.created_at, picked.c.id)
    )


_TO_SHIP = _to_ship_statement()
_TO_SHIP_FIELDS = tuple(name for name in OrderToShip._fields if name != "total")
_RUNNING_LOW = (
    select(
        *PRODUCT_COLUMNS,
        select(func.count())
        .select_from(products)
        .where(products.c.quantity_in_stock <= bindparam("threshold"))
        .scalar_subquery()
        .label("total"),
    )
    .where(products.c.quantity_in_stock <= bindparam("threshold"))
    .order_by(products.c.quantity_in_stock, products.c.id)
    .limit(bindparam("limit"))
)
_SALES: dict[int, Select[Any]] = {}


def _sales_statement(stretches: int) -> Select[Any]:
    """Sales per stretch between ``stretches + 1`` bound instants ``b0``...: each order's
    stretch is found by a binary search written as nested CASEs (about log2(stretches)
    comparisons per order, where a flat CASE makes half of them). Orders count with their
    stored totals; the few an instance of the release before 0008 wrote without them (found
    by the partial index ``ix_orders_created_without_totals``) with their lines summed. The
    two are a UNION ALL rather than a COALESCE over a subquery per order: PostgreSQL costs such
    a subquery for every row, and the inflated estimate sent the statement through JIT
    compilation (1.5 s). Stretches without orders have no row."""
    if stretches not in _SALES:
        created = orders.c.created_at
        bounds = [bindparam(f"b{i}", type_=created.type) for i in range(stretches + 1)]

        def stretch_of(low: int, high: int) -> Any:
            if high - low == 1:
                return low
            middle = (low + high) // 2
            return case(
                (created < bounds[middle], stretch_of(low, middle)),
                else_=stretch_of(middle, high),
            )

        stretch = type_coerce(stretch_of(0, stretches), Integer).label("stretch")
        sold = (
            created >= bounds[0],
            created < bounds[-1],
            orders.c.status != OrderStatus.CANCELLED,
        )
        stored = select(
            stretch,
            orders.c.subtotal.label("net"),
            orders.c.vat_total.label("vat"),
        ).where(*sold, orders.c.subtotal.is_not(None))
        from_lines = (
            select(
                stretch,
                func.sum(_LINE_NET).label("net"),
                func.sum(_LINE_VAT).label("vat"),
            )
            .join(order_lines, order_lines.c.order_id == orders.c.id)
            .where(*sold, orders.c.subtotal.is_(None))
            .group_by(orders.c.id, created)
        )
        per_order = union_all(stored, from_lines).subquery("sold")
        _SALES[stretches] = select(
            per_order.c.stretch,
            func.count().label("orders"),
            _money_sum(per_order.c.net).label("net"),
            _money_sum(per_order.c.vat).label("vat"),
        ).group_by(per_order.c.stretch)
    return _SALES[stretches]


# The export's columns: the arguments of ``export_line`` (its amounts are the domain's rule).
_EXPORT_COLUMNS = (
    orders.c.id.label("order_id"),
    orders.c.created_at,
    orders.c.status,
    users.c.username.label("customer"),
    orders.c.invoice_number,
    order_lines.c.sku,
    order_lines.c.product_name,
    order_lines.c.quantity,
    order_lines.c.unit_price,
    order_lines.c.vat_rate,
    orders.c.currency,
)
_EXPORTS: dict[bool, Select[Any]] = {}


def _export_statement(by_status: bool) -> Select[Any]:
    if by_status not in _EXPORTS:
        conditions = [
            orders.c.created_at >= bindparam("start", type_=orders.c.created_at.type),
            orders.c.created_at < bindparam("end", type_=orders.c.created_at.type),
        ]
        if by_status:
            conditions.append(orders.c.status == bindparam("status", type_=orders.c.status.type))
        _EXPORTS[by_status] = (
            select(*_EXPORT_COLUMNS)
            .join(users, users.c.id == orders.c.customer_id)
            .join(order_lines, order_lines.c.order_id == orders.c.id)
            .where(*conditions)
            .order_by(orders.c.created_at, orders.c.id, order_lines.c.product_id)
        )
    return _EXPORTS[by_status]


def _in_trouble_statement() -> Select[Any]:
    """Endpoints disabled or with failed deliveries: the failed ones counted per endpoint
    first (``ix_webhook_deliveries_due`` starts with the status), then joined to the few
    endpoints; the count of all of them rides along as a window."""
    failed = (
        select(
            webhook_deliveries.c.endpoint_id,
            func.count().label("failed"),
        )
        .where(webhook_deliveries.c.status == DeliveryStatus.FAILED.value)
        .group_by(webhook_deliveries.c.endpoint_id)
        .subquery("failed")
    )
    endpoint = webhook_endpoints
    count = func.coalesce(failed.c.failed, 0)
    return (
        select(
            endpoint.c.id,
            endpoint.c.url,
            endpoint.c.description,
            endpoint.c.is_active,
            endpoint.c.failing_since,
            count.label("failed"),
            func.count().over().label("total"),
        )
        .outerjoin(failed, failed.c.endpoint_id == endpoint.c.id)
        .where(or_(~endpoint.c.is_active, count > 0))
        .order_by(endpoint.c.is_active, count.desc(), endpoint.c.id)
        .limit(bindparam("limit"))
    )


_IN_TROUBLE = _in_trouble_statement()


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

    def order_events(
        self, customer_id: int, *, after: FeedPosition, limit: int
    ) -> list[OrderEventView]:
        statement = _FEED[self._dialect()]
        parameters = {"customer_id": customer_id, "tx": after.tx, "id": after.id, "limit": limit}
        return _event_views(self.execute(statement, parameters).all())

    def _dialect(self) -> str:
        bind = self._connection if self._connection is not None else self._bind
        return bind.dialect.name

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

    # --- the admin's dashboard and the orders export -------------------------------------

    def orders_to_ship(self, *, limit: int) -> OrdersToShip:
        rows = self.execute(_TO_SHIP, {"limit": limit}).all()
        return OrdersToShip(
            orders=[
                # The statement's columns are named as the view's fields (but the total).
                OrderToShip(
                    **{name: row._mapping[name] for name in _TO_SHIP_FIELDS},
                    total=row.subtotal + row.vat_total,
                )
                for row in rows
            ],
            waiting=rows[0].waiting if rows else 0,
        )

    def products_running_low(self, *, threshold: int, limit: int) -> Page[ProductView]:
        rows = self.execute(_RUNNING_LOW, {"threshold": threshold, "limit": limit}).all()
        return Page(
            items=[ProductView._make(row[:-1]) for row in rows],
            total=rows[0].total if rows else 0,
        )

    def sales(self, bounds: Sequence[datetime]) -> list[Sales]:
        stretches = len(bounds) - 1
        if stretches < 1:
            return []
        rows = self.execute(
            _sales_statement(stretches), {f"b{i}": bound for i, bound in enumerate(bounds)}
        )
        found = [NO_SALES] * stretches
        for row in rows:
            found[row.stretch] = Sales(orders=row.orders, net=row.net, vat=row.vat)
        return found

    def webhook_endpoints_in_trouble(self, *, limit: int) -> Page[EndpointTrouble]:
        rows = self.execute(_IN_TROUBLE, {"limit": limit}).all()
        return Page(
            items=[EndpointTrouble._make(row[:-1]) for row in rows],
            total=rows[0].total if rows else 0,
        )

    def order_lines_export(self, flt: ExportFilter, *, chunk: int) -> Iterator[ExportLine]:
        statement = _export_statement(flt.status is not None)
        parameters = {"start": flt.start, "end": flt.end, "status": flt.status}
        result = self._stream(statement, parameters, chunk)
        try:
            for rows in result.partitions():
                for row in rows:
                    yield export_line(**row._mapping)
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable("the connection to the database was lost") from error
            raise
        finally:
            result.close()

    def _stream(
        self, statement: Select[Any], parameters: dict[str, Any], chunk: int
    ) -> CursorResult[Any]:
        """``statement``'s rows fetched ``chunk`` at a time: through a server-side cursor on
        PostgreSQL, SQLite's own cursor (which steps through its rows) elsewhere.

        A server-side cursor lives inside a transaction, and the read engine's connections
        are in autocommit: this one runs REPEATABLE READ for the rest of the unit of work (one
        snapshot for the whole stream, so a long export is consistent), and the pool puts it
        back in autocommit when the unit of work gives it back."""
        connection = self._connection
        if connection is None:
            raise UnitOfWorkError("read outside its unit of work (use `with uow.read()`)")
        if (
            isinstance(self._bind, Engine)
            and connection.dialect.name == "postgresql"
            and not connection.in_transaction()
        ):
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        try:
            return connection.execute(
                statement,
                parameters,
                execution_options={"stream_results": True, "yield_per": chunk},
            )
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable("the connection to the database was lost") from error
            raise
