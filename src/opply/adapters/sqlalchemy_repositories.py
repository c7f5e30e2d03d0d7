"""Repositories on a SQLAlchemy session. Each method issues a fixed number of statements."""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from opply.adapters.orm import (
    idempotency_keys,
    order_lines,
    orders,
    products,
    refresh_tokens,
    users,
)
from opply.adapters.sql_read_models import lines_of_orders, product_page
from opply.adapters.stock_writes import flush_stock_together
from opply.application.ports import (
    OrderFilter,
    Page,
    ProductFilter,
    UserAccess,
    UserFilter,
)
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)


@functools.cache
def _for_update() -> Select[Product]:
    """Every order runs it, so it is built once (building it cost more than running it), on
    first use: ``Product`` is mapped by ``start_mappers``, after this module is imported."""
    return (
        select(Product)
        .where(products.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(products.c.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


class SqlProductRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, product: Product) -> None:
        self._session.add(product)
        self._session.flush()

    def get(self, product_id: int) -> Product | None:
        return self._session.get(Product, product_id)

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        if not product_ids:
            return {}
        found = self._session.scalars(_for_update(), {"ids": sorted(product_ids)})
        return {p.id: p for p in found if p.id is not None}

    def list(self, flt: ProductFilter, offset: int, limit: int) -> Page[Product]:
        rows, total = product_page(self._session, (Product,), flt, offset, limit)
        return Page([row[0] for row in rows], total)


class SqlOrderRepository:
    """Orders read through the ORM (to change their status); written, with their immutable
    lines, through Core, in one statement per batch."""

    _INSERT_ORDER = insert(orders).returning(orders.c.id)

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, order: Order) -> None:
        """The order's row and its lines' rows in two INSERTs, through Core.

        An order is immutable once placed but for its status, which ``get`` and
        ``get_for_customer`` load through the ORM to change; a new order needs none of the
        ORM's unit-of-work bookkeeping, which cost more CPU than the rest of the transaction.
        """
        flush_stock_together(self._session)  # the lines' products: one UPDATE, not one each
        order.id = self._session.execute(
            self._INSERT_ORDER,
            {
                "customer_id": order.customer_id,
                "status": order.status,
                "currency": order.currency,
                "created_at": order.created_at,
            },
        ).scalar_one()
        self._session.execute(
            insert(order_lines),
            [
                {
                    "order_id": order.id,
                    "product_id": line.product_id,
                    "product_name": line.product_name,
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                }
                for line in order.lines
            ],
        )

    def _with_lines(self, found: list[Order]) -> list[Order]:
        if not found:
            return found
        lines = lines_of_orders(self._session, [o.id for o in found if o.id is not None])
        for order in found:
            assert order.id is not None
            order.lines = lines[order.id]
        return found

    def get_for_customer(
        self, order_id: int, customer_id: int, *, for_update: bool = False
    ) -> Order | None:
        stmt = select(Order).where(orders.c.id == order_id, orders.c.customer_id == customer_id)
        if for_update:
            stmt = stmt.with_for_update(of=orders).execution_options(populate_existing=True)
        order = self._session.scalars(stmt).first()
        return self._with_lines([order])[0] if order is not None else None

    def list_for_customer(
        self, customer_id: int, status: OrderStatus | None, offset: int, limit: int
    ) -> Page[Order]:
        return self.list_all(OrderFilter(customer_id=customer_id, status=status), offset, limit)

    def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        stmt = select(Order).where(orders.c.id == order_id)
        if for_update:
            stmt = stmt.with_for_update(of=orders).execution_options(populate_existing=True)
        order = self._session.scalars(stmt).first()
        return self._with_lines([order])[0] if order is not None else None

    def list_all(self, flt: OrderFilter, offset: int, limit: int) -> Page[Order]:
        conditions = []
        if flt.customer_id is not None:
            conditions.append(orders.c.customer_id == flt.customer_id)
        if flt.status is not None:
            conditions.append(orders.c.status == flt.status)
        total = (
            self._session.scalar(select(func.count()).select_from(orders).where(*conditions)) or 0
        )
        if offset >= total:
            return Page([], total)
        stmt = (
            select(Order)
            .where(*conditions)
            .order_by(orders.c.created_at.desc(), orders.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return Page(self._with_lines(list(self._session.scalars(stmt))), total)


class SqlUserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user: User) -> None:
        self._session.add(user)
        self._session.flush()

    def get(self, user_id: int) -> User | None:
        return self._session.get(User, user_id)

    # Every authenticated request runs it: built once (building it cost more than running it).
    _ACCESS = select(users.c.is_active, users.c.is_staff).where(users.c.id == bindparam("id"))

    def access(self, user_id: int) -> UserAccess | None:
        row = self._session.execute(self._ACCESS, {"id": user_id}).first()
        return UserAccess(bool(row[0]), bool(row[1])) if row is not None else None

    def get_by_username(self, username: str) -> User | None:
        return self._session.scalars(select(User).filter_by(username=username)).first()

    def get_many(self, user_ids: Collection[int]) -> dict[int, User]:
        if not user_ids:
            return {}
        stmt = select(User).where(users.c.id.in_(sorted(user_ids)))
        return {u.id: u for u in self._session.scalars(stmt) if u.id is not None}

    def list(self, flt: UserFilter, offset: int, limit: int) -> Page[User]:
        conditions = []
        if flt.search:
            conditions.append(users.c.username.icontains(flt.search, autoescape=True))
        total = (
            self._session.scalar(select(func.count()).select_from(users).where(*conditions)) or 0
        )
        if offset >= total:
            return Page([], total)
        stmt = (
            select(User).where(*conditions).order_by(users.c.username).offset(offset).limit(limit)
        )
        return Page(list(self._session.scalars(stmt)), total)


class SqlRefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, token: RefreshToken) -> None:
        self._session.add(token)

    def get_for_update(self, jti: str) -> RefreshToken | None:
        stmt = (
            select(RefreshToken)
            .where(refresh_tokens.c.jti == jti)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self._session.scalars(stmt).first()

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


class SqlIdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        dialect = self._session.get_bind().dialect.name
        values = {"customer_id": customer_id, "key": key, "fingerprint": "", "created_at": at}
        stmt: Any
        if dialect == "postgresql":
            stmt = pg_insert(idempotency_keys).values(**values).on_conflict_do_nothing()
        elif dialect == "sqlite":
            stmt = sqlite_insert(idempotency_keys).values(**values).on_conflict_do_nothing()
        else:  # pragma: no cover - only PostgreSQL and SQLite are supported
            stmt = insert(idempotency_keys).values(**values)
        # ON CONFLICT DO NOTHING waits for a concurrent claim of the same key to finish, then
        # reports no row: the retry then reads the first request's stored answer.
        result = self._session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None:
        stmt = select(IdempotencyRecord).where(
            idempotency_keys.c.customer_id == customer_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.order_id.is_not(None),
        )
        return self._session.scalars(stmt).first()

    def save(self, record: IdempotencyRecord) -> None:
        self._session.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.customer_id == record.customer_id,
                idempotency_keys.c.key == record.key,
            )
            .values(
                fingerprint=record.fingerprint,
                created_at=record.created_at,
                order_id=record.order_id,
                response=record.response,
            )
            .execution_options(synchronize_session=False)
        )

    def purge_older_than(self, cutoff: datetime) -> int:
        result = self._session.execute(
            delete(idempotency_keys)
            .where(idempotency_keys.c.created_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
