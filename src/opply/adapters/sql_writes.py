"""The write unit of work on a SQLAlchemy ORM session, and its repositories.

Repositories load aggregates to change them (locked with ``SELECT ... FOR UPDATE`` where a
concurrent writer could interfere) and add new ones. Each method sends a fixed number of
statements, whatever the number of lines or products.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from opply.adapters.database import WRITE_OPTION, is_unavailable
from opply.adapters.orm import (
    addresses,
    delivery_column,
    idempotency_keys,
    invoice_counters,
    order_events,
    order_lines,
    orders,
    products,
    refresh_tokens,
    users,
)
from opply.adapters.stock_writes import flush_stock_together
from opply.application.dto import RecordedEvent
from opply.application.plain import to_plain
from opply.application.unit_of_work import StoreUnavailable, WriteUnitOfWork
from opply.domain.errors import SkuTaken
from opply.domain.model import (
    DELIVERY_FIELDS,
    Address,
    AddressBook,
    IdempotencyRecord,
    Order,
    OrderLine,
    Product,
    RefreshToken,
    User,
    default_sku,
)


@functools.cache
def _products_for_update() -> Select[Product]:
    """Every order runs it, so it is built once (building it cost more than running it), on
    first use: ``Product`` is mapped by ``start_mappers``, after this module is imported."""
    return (
        select(Product)
        .where(products.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(products.c.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


SKU_INDEX = "ix_products_sku_lower"


@contextmanager
def sku_uniqueness(sku: str | None) -> Iterator[None]:
    """The database's refusal of a taken SKU (its unique index, which ignores case, so that two
    racing staff edits cannot both win) as the domain's ``SkuTaken``."""
    try:
        yield
    except IntegrityError as error:
        if SKU_INDEX not in str(error.orig):
            raise
        raise SkuTaken(sku or "?") from error


class SqlProductRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, product: Product) -> None:
        chosen = product.sku
        if chosen is None:
            # A unique stand-in, never a valid SKU ("~" is not allowed in one), until the id
            # that the default SKU is made of is known; the same transaction replaces it.
            product.sku = f"~{uuid.uuid4().hex}"
        self._session.add(product)
        with sku_uniqueness(product.sku if chosen is not None else None):
            self._session.flush()
        if chosen is None:
            assert product.id is not None
            product.sku = default_sku(product.id)
            self._session.flush()

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        if not product_ids:
            return {}
        found = self._session.scalars(_products_for_update(), {"ids": sorted(product_ids)})
        return {p.id: p for p in found if p.id is not None}


_LINE_COLUMNS = tuple(f.name for f in fields(OrderLine))
_LINES = (
    select(*(order_lines.c[name] for name in _LINE_COLUMNS))
    .where(order_lines.c.order_id == bindparam("order_id"))
    .order_by(order_lines.c.product_id)
)


class SqlOrderRepository:
    """Orders read through the ORM (to change their status); written, with their immutable
    lines, through Core, in one statement each."""

    _INSERT_ORDER = insert(orders).returning(orders.c.id)
    _INSERT_LINES = insert(order_lines)

    def __init__(self, session: Session) -> None:
        self._session = session
        self.seen: list[Order] = []

    def add(self, order: Order) -> None:
        """The order's row and its lines' rows in two INSERTs, through Core.

        An order is immutable once placed but for its status, which ``get_for_update`` loads
        through the ORM to change; a new order needs none of the ORM's unit-of-work
        bookkeeping, which cost more CPU than the rest of the transaction.
        """
        flush_stock_together(self._session)  # the lines' products: one UPDATE, not one each
        amounts = order.amounts
        order.id = self._session.execute(
            self._INSERT_ORDER,
            {
                "customer_id": order.customer_id,
                "status": order.status,
                "currency": order.currency,
                "created_at": order.created_at,
                "subtotal": amounts.net,
                "vat_total": amounts.vat,
                **{
                    delivery_column(name): getattr(order.delivery_address, name, None)
                    for name in DELIVERY_FIELDS
                },
            },
        ).scalar_one()
        self._session.execute(
            self._INSERT_LINES,
            [
                {"order_id": order.id, **{name: getattr(line, name) for name in _LINE_COLUMNS}}
                for line in order.lines
            ],
        )
        self.seen.append(order)

    def get_for_update(self, order_id: int, *, customer_id: int | None = None) -> Order | None:
        conditions = [orders.c.id == order_id]
        if customer_id is not None:
            conditions.append(orders.c.customer_id == customer_id)
        statement = (
            select(Order)
            .where(*conditions)
            .with_for_update(of=orders)
            .execution_options(populate_existing=True)
        )
        order = self._session.scalars(statement).first()
        if order is None:
            return None
        order.lines = [
            OrderLine(**row._mapping)
            for row in self._session.execute(_LINES, {"order_id": order_id})
        ]
        self.seen.append(order)
        return order


class SqlEventOutbox:
    """Events into ``order_events``, with the writing transaction's id on PostgreSQL (what the
    feed's readers order by and wait for), in one INSERT per commit."""

    _TX_ID = {
        # xid8 (64 bits, never wraps) as a bigint; the first call gives the transaction its id.
        "postgresql": text("pg_current_xact_id()::text::bigint"),
        "sqlite": literal(0),
    }
    _INSERT = {
        dialect: insert(order_events).values(
            tx_id=tx_id,
            type=bindparam("b_type"),
            order_id=bindparam("b_order_id"),
            customer_id=bindparam("b_customer_id"),
            occurred_at=bindparam("b_occurred_at"),
            payload=bindparam("b_payload"),
        )
        for dialect, tx_id in _TX_ID.items()
    }

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, events: Sequence[RecordedEvent]) -> None:
        statement = self._INSERT[self._session.get_bind().dialect.name]
        self._session.execute(
            statement,
            [
                {
                    "b_type": event.type,
                    "b_order_id": event.order_id,
                    "b_customer_id": event.customer_id,
                    "b_occurred_at": event.occurred_at,
                    "b_payload": to_plain(event.order),
                }
                for event in events
            ],
        )


class SqlAddressRepository:
    """Address books, each loaded with its customer's row locked (``FOR NO KEY UPDATE``: orders
    and addresses that reference the customer may still be inserted meanwhile)."""

    _LOCK_CUSTOMER = (
        select(users.c.id).where(users.c.id == bindparam("id")).with_for_update(key_share=True)
    )

    def __init__(self, session: Session) -> None:
        self._session = session
        self._books: list[AddressBook] = []

    def book_for_update(self, customer_id: int) -> AddressBook:
        self._session.execute(self._LOCK_CUSTOMER, {"id": customer_id})
        found = self._session.scalars(
            select(Address)
            .where(addresses.c.customer_id == customer_id)
            .order_by(addresses.c.id)
            .execution_options(populate_existing=True)
        )
        book = AddressBook(customer_id=customer_id, addresses=list(found))
        self._books.append(book)
        return book

    def add(self, address: Address) -> None:
        self._session.add(address)

    def remove(self, address: Address) -> None:
        self._session.delete(address)

    def for_order(self, customer_id: int, address_id: int | None) -> Address | None:
        statement = select(Address).where(addresses.c.customer_id == customer_id)
        if address_id is None:
            statement = statement.where(addresses.c.is_default)
        else:
            statement = statement.where(addresses.c.id == address_id)
        return self._session.scalars(statement).first()

    def release_old_defaults(self) -> None:
        """Before the flush: clear the default flag of every address of a changed book but its
        new default. The flush writes rows in primary key order, so a default moving to an
        older address would otherwise meet the one-default index still held by the newer."""
        for book in self._books:
            default = book.default
            conditions = [addresses.c.customer_id == book.customer_id, addresses.c.is_default]
            if default is not None and default.id is not None:
                conditions.append(addresses.c.id != default.id)
            self._session.execute(
                update(addresses).where(*conditions).values(is_default=False),
                execution_options={"synchronize_session": False},
            )


class SqlInvoiceCounter:
    """``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: the year's row is created or moved
    on, and stays locked until the transaction ends (PostgreSQL and SQLite alike)."""

    _NEXT = {
        dialect: insert_(invoice_counters)
        .values(year=bindparam("year"), last_number=1)
        .on_conflict_do_update(
            index_elements=[invoice_counters.c.year],
            set_={"last_number": invoice_counters.c.last_number + 1},
        )
        .returning(invoice_counters.c.last_number)
        for dialect, insert_ in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
    }

    def __init__(self, session: Session) -> None:
        self._session = session

    def next(self, year: int) -> int:
        statement = self._NEXT[self._session.get_bind().dialect.name]
        return int(self._session.execute(statement, {"year": year}).scalar_one())


class SqlUserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user: User) -> None:
        self._session.add(user)
        self._session.flush()

    def get(self, user_id: int) -> User | None:
        return self._session.get(User, user_id)

    def get_by_username(self, username: str) -> User | None:
        return self._session.scalars(select(User).filter_by(username=username)).first()


class SqlRefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, token: RefreshToken) -> None:
        self._session.add(token)

    def get_for_update(self, jti: str) -> RefreshToken | None:
        statement = (
            select(RefreshToken)
            .where(refresh_tokens.c.jti == jti)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self._session.scalars(statement).first()

    def revoke_family(self, family_id: str, at: datetime) -> None:
        self._session.flush()
        self._session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        # Objects of this family already in the session must see the revocation too.
        for obj in self._session.identity_map.values():
            if isinstance(obj, RefreshToken) and obj.family_id == family_id:
                self._session.expire(obj)

    def revoke_all_of_user(self, user_id: int, at: datetime) -> None:
        self._session.flush()
        self._session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        for obj in self._session.identity_map.values():
            if isinstance(obj, RefreshToken) and obj.user_id == user_id:
                self._session.expire(obj)


class SqlIdempotencyRepository:
    """Keys claimed and filled in with statements built once (building and caching a statement
    per call cost more CPU than running it)."""

    # ON CONFLICT DO NOTHING waits for a concurrent claim of the same key to finish, then
    # reports no row: the retry then reads the first request's stored answer.
    _CLAIM = {
        "postgresql": pg_insert(idempotency_keys).on_conflict_do_nothing(),
        "sqlite": sqlite_insert(idempotency_keys).on_conflict_do_nothing(),
    }
    # The claim's created_at stays (it is when the key was taken, and an indexed column that
    # is not rewritten keeps the update cheap).
    _SAVE = (
        update(idempotency_keys)
        .where(
            idempotency_keys.c.customer_id == bindparam("b_customer_id"),
            idempotency_keys.c.key == bindparam("b_key"),
        )
        .values(
            fingerprint=bindparam("b_fingerprint"),
            order_id=bindparam("b_order_id"),
            response=bindparam("b_response"),
        )
    )

    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        statement = self._CLAIM[self._session.get_bind().dialect.name]
        values = {"customer_id": customer_id, "key": key, "fingerprint": "", "created_at": at}
        result = self._session.execute(statement, values)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None:
        statement = select(IdempotencyRecord).where(
            idempotency_keys.c.customer_id == customer_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.order_id.is_not(None),
        )
        return self._session.scalars(statement).first()

    def save(self, record: IdempotencyRecord) -> None:
        self._session.execute(
            self._SAVE,
            {
                "b_customer_id": record.customer_id,
                "b_key": record.key,
                "b_fingerprint": record.fingerprint,
                "b_order_id": record.order_id,
                "b_response": record.response,
            },
            execution_options={"synchronize_session": False},
        )

    def purge_older_than(self, cutoff: datetime) -> int:
        result = self._session.execute(
            delete(idempotency_keys)
            .where(idempotency_keys.c.created_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _edited_sku(session: Session) -> str | None:
    """The SKU a commit writes, read before it (to name it if it turns out to be taken)."""
    return next((obj.sku for obj in session.dirty if isinstance(obj, Product)), None)


class SqlWriteUnitOfWork(WriteUnitOfWork):
    """One ORM session, one transaction. Nothing is written unless ``commit`` is called."""

    session: Session
    addresses: SqlAddressRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def _begin(self) -> None:
        self.session = self._session_factory()
        try:
            # Seen by the SQLite "begin" hook, which then takes the write lock up front.
            self.session.connection(execution_options={WRITE_OPTION: True})
        except Exception as error:
            self.session.close()
            if is_unavailable(error):
                raise StoreUnavailable("the database cannot be reached") from error
            raise
        self.products = SqlProductRepository(self.session)
        self.orders = SqlOrderRepository(self.session)
        self.users = SqlUserRepository(self.session)
        self.refresh_tokens = SqlRefreshTokenRepository(self.session)
        self.idempotency = SqlIdempotencyRepository(self.session)
        self.outbox = SqlEventOutbox(self.session)
        self.addresses = SqlAddressRepository(self.session)
        self.invoice_numbers = SqlInvoiceCounter(self.session)

    def _commit(self) -> None:
        flush_stock_together(self.session)  # e.g. a cancelled order's products, in one UPDATE
        self.addresses.release_old_defaults()
        with sku_uniqueness(_edited_sku(self.session)):
            self.session.flush()
        try:
            self.session.commit()
        except Exception as error:
            if is_unavailable(error):
                # COMMIT was sent and no answer came back: kept or not, nobody can tell here.
                raise StoreUnavailable(
                    "the connection to the database was lost while committing",
                    outcome_unknown=True,
                ) from error
            raise

    def _unavailable(self, error: BaseException) -> StoreUnavailable | None:
        if is_unavailable(error):
            # Lost before COMMIT was sent: the server rolled the transaction back.
            return StoreUnavailable("the connection to the database was lost; nothing was kept")
        return None

    def _rollback(self) -> None:
        try:
            self.session.rollback()
        except Exception as error:
            if not is_unavailable(error):
                raise
            # The connection is gone and the server ended its transaction with it: nothing is
            # left to undo (the error that lost it, if any, is what the caller sees).

    def _end(self) -> None:
        self.session.close()
