"""In-memory twins of every port: fast, deterministic test doubles with the same contract.

A write unit of work works on a deep copy of the store and publishes it on commit, so a rollback
really leaves nothing behind; a read unit of work reads the published store and builds the same
views the SQL reads do. One lock serialises units of work, like a serialisable database.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import itertools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opply.application.dto import (
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
    OrdersToShip,
    OrderToShip,
    OrderView,
    Page,
    PageRequest,
    ProductFilter,
    ProductView,
    RecordedEvent,
    Sales,
    UserAccess,
    UserFilter,
    UserView,
    WebhookAttemptView,
    export_line,
    view_of_order,
)
from opply.application.unit_of_work import ReadUnitOfWork, UnitOfWorkError, WriteUnitOfWork
from opply.domain.errors import SkuTaken
from opply.domain.model import (
    Address,
    AddressBook,
    Amounts,
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
    default_sku,
)


@dataclass
class _Tables:
    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    idempotency: dict[tuple[int, str], IdempotencyRecord | None] = field(default_factory=dict)
    # The outbox: (id, event) in the order they were committed (writers take turns here).
    events: list[tuple[int, RecordedEvent]] = field(default_factory=list)
    addresses: dict[int, Address] = field(default_factory=dict)
    invoice_counters: dict[int, int] = field(default_factory=dict)
    # Each order's net and VAT as stored with its row when placed (orders.subtotal and
    # vat_total); an order without them (the release before 0008 wrote it) is read from its
    # lines, as the SQL reads do.
    order_totals: dict[int, Amounts] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        self.next_ids[table] = self.next_ids.get(table, 0) + 1
        return self.next_ids[table]


@dataclass
class WebhookEndpointRow:
    id: int
    url: str
    event_types: tuple[str, ...]
    description: str
    secret: str
    is_active: bool
    created_at: datetime
    failing_since: datetime | None = None


@dataclass
class WebhookDeliveryRow:
    id: int
    endpoint_id: int
    event_id: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    locked_until: datetime | None = None
    tried: list[WebhookAttemptView] = field(default_factory=list)


class InMemoryStore:
    """The 'database' shared by every unit of work of one test.

    The webhook store's rows (``memory_webhooks.py``) live here too, beside the tables the
    units of work copy: that store changes them in place under the lock, and the read unit of
    work reads them for the dashboard."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.lock = threading.RLock()
        self.commits = 0
        self.webhook_endpoints: dict[int, WebhookEndpointRow] = {}
        self.webhook_deliveries: dict[int, WebhookDeliveryRow] = {}


def _page(found: list[Any], page: PageRequest) -> Page[Any]:
    return Page(items=found[page.offset : page.offset + page.page_size], total=len(found))


def _view(view_type: Any, entity: Any) -> Any:
    """A view of an entity, field by field, by name: the SQL reads select the same names."""
    return view_type(**{name: getattr(entity, name) for name in view_type._fields})


_PRODUCT_SORT_KEYS: dict[str, Callable[[Product], Any]] = {
    "id": lambda p: p.id or 0,
    "name": lambda p: p.name,
    "price": lambda p: p.price,
    "stock": lambda p: p.quantity_in_stock,
}


class InMemoryReadUnitOfWork(ReadUnitOfWork):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._tables: _Tables | None = None

    def _begin(self) -> None:
        self._store.lock.acquire()
        self._tables = self._store.tables

    def _end(self) -> None:
        self._tables = None
        self._store.lock.release()

    @property
    def _t(self) -> _Tables:
        if self._tables is None:
            raise UnitOfWorkError("read outside its unit of work (use `with uow.read()`)")
        return self._tables

    def product(self, product_id: int) -> ProductView | None:
        product = self._t.products.get(product_id)
        return _view(ProductView, product) if product is not None else None

    def product_page(self, flt: ProductFilter, page: PageRequest) -> Page[ProductView]:
        search = flt.search.casefold() if flt.search else None
        found = [
            p
            for _, p in sorted(self._t.products.items())
            if (search is None or search in p.name.casefold() or search in (p.sku or "").casefold())
            and (not flt.in_stock or p.quantity_in_stock > 0)
        ]
        key = _PRODUCT_SORT_KEYS[flt.sort.value.lstrip("-")]
        # Stable, even reversed: equal keys keep their id order, as in the SQL's tie-break.
        found.sort(key=key, reverse=flt.sort.value.startswith("-"))
        chosen = _page(found, page)
        return Page(items=[_view(ProductView, p) for p in chosen.items], total=chosen.total)

    def _order_view(self, order: Order) -> OrderView:
        customer = self._t.users[order.customer_id]
        return view_of_order(order, CustomerView(id=order.customer_id, username=customer.username))

    def order(self, order_id: int, *, customer_id: int | None = None) -> OrderView | None:
        order = self._t.orders.get(order_id)
        if order is None or (customer_id is not None and order.customer_id != customer_id):
            return None
        return self._order_view(order)

    def order_page(self, flt: OrderFilter, page: PageRequest) -> Page[OrderView]:
        usernames = {u.id: u.username for u in self._t.users.values()}
        found = sorted(
            (
                o
                for o in self._t.orders.values()
                if (flt.customer_id is None or o.customer_id == flt.customer_id)
                and (
                    flt.customer_username is None
                    or usernames.get(o.customer_id) == flt.customer_username
                )
                and (flt.status is None or o.status is flt.status)
            ),
            key=lambda o: (o.created_at, o.id or 0),
            reverse=True,
        )
        chosen = _page(found, page)
        return Page(items=[self._order_view(o) for o in chosen.items], total=chosen.total)

    def order_events(
        self, customer_id: int, *, after: FeedPosition, limit: int
    ) -> list[OrderEventView]:
        # Every committed event is final here (writers take turns), as on SQLite: tx is 0.
        found = [
            OrderEventView(
                id=event_id,
                type=event.type,
                occurred_at=event.occurred_at,
                order=event.order,
                position=FeedPosition(tx=0, id=event_id),
            )
            for event_id, event in self._t.events
            if event.customer_id == customer_id and (0, event_id) > after
        ]
        return found[:limit]

    def addresses(self, customer_id: int) -> list[AddressView]:
        found = sorted(
            (a for a in self._t.addresses.values() if a.customer_id == customer_id),
            key=lambda a: (a.is_default, a.id or 0),
            reverse=True,
        )
        return [_view(AddressView, a) for a in found]

    def address(self, address_id: int, *, customer_id: int) -> AddressView | None:
        address = self._t.addresses.get(address_id)
        if address is None or address.customer_id != customer_id:
            return None
        view: AddressView = _view(AddressView, address)
        return view

    def _user_named(self, username: str) -> User | None:
        return next((u for u in self._t.users.values() if u.username == username), None)

    def user_access(self, user_id: int, *, login: str) -> UserAccess | None:
        user = self._t.users.get(user_id)
        if user is None:
            return None
        revoked = any(
            t.family_id == login and t.revoked_at is not None
            for t in self._t.refresh_tokens.values()
        )
        return UserAccess(
            username=user.username,
            is_active=user.is_active,
            is_staff=user.is_staff,
            token_version=user.token_version,
            login_revoked=revoked,
        )

    def credentials(self, username: str) -> Credentials | None:
        user = self._user_named(username)
        return _view(Credentials, user) if user is not None else None

    def user(self, username: str) -> UserView | None:
        user = self._user_named(username)
        return _view(UserView, user) if user is not None else None

    def user_page(self, flt: UserFilter, page: PageRequest) -> Page[UserView]:
        search = flt.search.casefold() if flt.search else None
        found = sorted(
            (
                u
                for u in self._t.users.values()
                if search is None or search in u.username.casefold()
            ),
            key=lambda u: u.username,
        )
        chosen = _page(found, page)
        return Page(items=[_view(UserView, u) for u in chosen.items], total=chosen.total)

    # --- the admin's dashboard and the orders export -------------------------------------

    def _totals(self, order: Order) -> Amounts:
        """The order's stored net and VAT, or its lines' sums where none are stored."""
        stored = self._t.order_totals.get(order.id or 0)
        return stored if stored is not None else order.amounts

    def orders_to_ship(self, *, limit: int) -> OrdersToShip:
        placed = sorted(
            (o for o in self._t.orders.values() if o.status is OrderStatus.PLACED),
            key=lambda o: (o.created_at, o.id or 0),
        )
        shown = []
        for order in placed[:limit]:
            assert order.id is not None
            totals = self._totals(order)
            address = order.delivery_address
            shown.append(
                OrderToShip(
                    id=order.id,
                    created_at=order.created_at,
                    customer=self._t.users[order.customer_id].username,
                    delivery_city=address.city if address is not None else None,
                    currency=order.currency,
                    subtotal=totals.net,
                    vat_total=totals.vat,
                    total=totals.total,
                )
            )
        return OrdersToShip(orders=shown, waiting=len(placed))

    def products_running_low(self, *, threshold: int, limit: int) -> Page[ProductView]:
        low = sorted(
            (p for p in self._t.products.values() if p.quantity_in_stock <= threshold),
            key=lambda p: (p.quantity_in_stock, p.id or 0),
        )
        return Page(items=[_view(ProductView, p) for p in low[:limit]], total=len(low))

    def sales(self, bounds: Sequence[datetime]) -> list[Sales]:
        found = [NO_SALES] * max(0, len(bounds) - 1)
        for order in self._t.orders.values():
            if order.status is OrderStatus.CANCELLED:
                continue
            for index, (start, end) in enumerate(itertools.pairwise(bounds)):
                if start <= order.created_at < end:
                    totals = self._totals(order)
                    was = found[index]
                    found[index] = Sales(
                        orders=was.orders + 1,
                        net=was.net + totals.net,
                        vat=was.vat + totals.vat,
                    )
        return found

    def webhook_endpoints_in_trouble(self, *, limit: int) -> Page[EndpointTrouble]:
        failed = collections.Counter(
            d.endpoint_id
            for d in self._store.webhook_deliveries.values()
            if d.status is DeliveryStatus.FAILED
        )
        found = sorted(
            (
                EndpointTrouble(
                    id=e.id,
                    url=e.url,
                    description=e.description,
                    is_active=e.is_active,
                    failing_since=e.failing_since,
                    failed=failed[e.id],
                )
                for e in self._store.webhook_endpoints.values()
                if not e.is_active or failed[e.id]
            ),
            key=lambda e: (e.is_active, -e.failed, e.id),
        )
        return Page(items=found[:limit], total=len(found))

    def order_lines_export(self, flt: ExportFilter, *, chunk: int) -> Iterator[ExportLine]:
        picked = sorted(
            (
                o
                for o in self._t.orders.values()
                if flt.start <= o.created_at < flt.end
                and (flt.status is None or o.status is flt.status)
            ),
            key=lambda o: (o.created_at, o.id or 0),
        )
        for order in picked:
            assert order.id is not None
            customer = self._t.users[order.customer_id].username
            for line in sorted(order.lines, key=lambda line: line.product_id):
                yield export_line(
                    order_id=order.id,
                    created_at=order.created_at,
                    status=order.status,
                    customer=customer,
                    invoice_number=order.invoice_number,
                    sku=line.sku,
                    product_name=line.product_name,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    vat_rate=line.vat_rate,
                    currency=order.currency,
                )


def _check_skus(products: dict[int, Product]) -> None:
    """SKUs are unique ignoring case, as the SQL tables' unique index makes them."""
    seen: dict[str, int] = {}
    for product_id, product in sorted(products.items()):
        key = (product.sku or "").lower()
        if key in seen:
            raise SkuTaken(product.sku or "")
        seen[key] = product_id


class InMemoryProductRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, product: Product) -> None:
        product.id = self._t.next_id("products")
        if product.sku is None:
            product.sku = default_sku(product.id)
        _check_skus({**self._t.products, product.id: product})
        self._t.products[product.id] = product

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        return {i: self._t.products[i] for i in sorted(product_ids) if i in self._t.products}


class InMemoryOrderRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables
        self.seen: list[Order] = []

    def add(self, order: Order) -> None:
        order.id = self._t.next_id("orders")
        self._t.orders[order.id] = order
        self._t.order_totals[order.id] = order.amounts
        self.seen.append(order)

    def get_for_update(self, order_id: int, *, customer_id: int | None = None) -> Order | None:
        order = self._t.orders.get(order_id)
        if order is None or (customer_id is not None and order.customer_id != customer_id):
            return None
        self.seen.append(order)
        return order


class InMemoryEventOutbox:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, events: Sequence[RecordedEvent]) -> None:
        self._t.events.extend((self._t.next_id("order_events"), event) for event in events)


class InMemoryAddressRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def book_for_update(self, customer_id: int) -> AddressBook:
        found = [a for _, a in sorted(self._t.addresses.items()) if a.customer_id == customer_id]
        return AddressBook(customer_id=customer_id, addresses=found)

    def add(self, address: Address) -> None:
        address.id = self._t.next_id("addresses")
        self._t.addresses[address.id] = address

    def remove(self, address: Address) -> None:
        del self._t.addresses[address.id or 0]

    def for_order(self, customer_id: int, address_id: int | None) -> Address | None:
        return next(
            (
                a
                for a in self._t.addresses.values()
                if a.customer_id == customer_id
                and (a.id == address_id if address_id is not None else a.is_default)
            ),
            None,
        )


def _check_one_default(addresses: dict[int, Address]) -> None:
    """At most one default per customer, as the SQL tables' partial unique index makes it."""
    defaults = [a.customer_id for a in addresses.values() if a.is_default]
    if len(defaults) != len(set(defaults)):
        raise AssertionError("two default addresses in one book")


class InMemoryInvoiceCounter:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def next(self, year: int) -> int:
        self._t.invoice_counters[year] = self._t.invoice_counters.get(year, 0) + 1
        return self._t.invoice_counters[year]


class InMemoryUserRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, user: User) -> None:
        user.id = self._t.next_id("users")
        self._t.users[user.id] = user

    def get(self, user_id: int) -> User | None:
        return self._t.users.get(user_id)

    def get_by_username(self, username: str) -> User | None:
        return next((u for u in self._t.users.values() if u.username == username), None)


class InMemoryRefreshTokenRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add(self, token: RefreshToken) -> None:
        self._t.refresh_tokens[token.jti] = token

    def get_for_update(self, jti: str) -> RefreshToken | None:
        return self._t.refresh_tokens.get(jti)

    def revoke_family(self, family_id: str, at: datetime) -> None:
        for token in self._t.refresh_tokens.values():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = at

    def revoke_all_of_user(self, user_id: int, at: datetime) -> None:
        for token in self._t.refresh_tokens.values():
            if token.user_id == user_id and token.revoked_at is None:
                token.revoked_at = at


class InMemoryIdempotencyRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        if (customer_id, key) in self._t.idempotency:
            return False
        self._t.idempotency[(customer_id, key)] = None
        return True

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None:
        return self._t.idempotency.get((customer_id, key))

    def save(self, record: IdempotencyRecord) -> None:
        self._t.idempotency[(record.customer_id, record.key)] = record

    def purge_older_than(self, cutoff: datetime) -> int:
        old = [k for k, r in self._t.idempotency.items() if r is not None and r.created_at < cutoff]
        for k in old:
            del self._t.idempotency[k]
        return len(old)


class InMemoryWriteUnitOfWork(WriteUnitOfWork):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._working: _Tables | None = None

    def _begin(self) -> None:
        self._store.lock.acquire()
        self._working = copy.deepcopy(self._store.tables)
        self._bind_repositories()

    def _commit(self) -> None:
        assert self._working is not None
        _check_skus(self._working.products)  # the database's unique index, here
        _check_one_default(self._working.addresses)  # and its one-default index
        # Publish a copy: objects the use case still holds stay private to this unit of work,
        # as they would be in a database session.
        self._store.tables = copy.deepcopy(self._working)
        self._store.commits += 1

    def _rollback(self) -> None:
        if self._working is not None:
            self._working = copy.deepcopy(self._store.tables)
            self._bind_repositories()

    def _end(self) -> None:
        self._working = None
        self._store.lock.release()

    def _bind_repositories(self) -> None:
        assert self._working is not None
        self.products = InMemoryProductRepository(self._working)
        self.orders = InMemoryOrderRepository(self._working)
        self.users = InMemoryUserRepository(self._working)
        self.refresh_tokens = InMemoryRefreshTokenRepository(self._working)
        self.idempotency = InMemoryIdempotencyRepository(self._working)
        self.outbox = InMemoryEventOutbox(self._working)
        self.addresses = InMemoryAddressRepository(self._working)
        self.invoice_numbers = InMemoryInvoiceCounter(self._working)


class InMemoryUnitOfWork:
    """Opens read and write units of work on one store."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    def read(self) -> InMemoryReadUnitOfWork:
        return InMemoryReadUnitOfWork(self.store)

    def write(self) -> InMemoryWriteUnitOfWork:
        return InMemoryWriteUnitOfWork(self.store)


class FakePasswordHasher:
    """Fast stand-in for argon2 in unit tests (never used by the running service)."""

    def __init__(self) -> None:
        self.dummy_calls = 0

    def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == self.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith("fake$")

    def dummy_verify(self, password: str) -> None:
        self.dummy_calls += 1


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 10, 15, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)
