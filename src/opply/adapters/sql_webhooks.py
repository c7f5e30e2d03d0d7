"""The webhook store on SQLAlchemy: endpoints, and PostgreSQL (or SQLite) as the delivery queue.

Every method is one short transaction of its own on the write engine, so nothing is held while a
worker talks to a receiver, and nothing depends on session state (it works behind PgBouncer in
transaction mode). The queue's rules, on PostgreSQL (docs/architecture.md, "Webhooks"):

* **Fan-out.** One row (``webhook_fanout``) holds where the fan-out stands in the global
  (tx_id, id) order of ``order_events``. A worker locks it with ``FOR UPDATE SKIP LOCKED`` (a
  second worker skips the step instead of queueing behind it), reads the events after it that
  no running transaction can still precede (below the snapshot's xmin, as the customer's feed
  does), inserts one delivery per matching active endpoint and moves the cursor, all in one
  transaction: either the deliveries and the new cursor are kept, or neither.
* **Claim.** Due deliveries are taken with ``FOR UPDATE SKIP LOCKED`` and given a lease
  (``locked_until``) and one more attempt in the same statement; the HTTP attempt happens after
  that transaction. A worker that dies leaves the lease to run out; another worker then claims
  the delivery again. The attempt count fences the result: a worker whose lease was taken over
  cannot record over the newer attempt.

On SQLite writers take turns (BEGIN IMMEDIATE), so the same statements without the row locks
give the same guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    case,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError

from opply.adapters.database import WRITE_OPTION, is_unavailable
from opply.adapters.orm import (
    order_events,
    users,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_fanout,
)
from opply.application.dto import (
    AttemptResult,
    ClaimedDelivery,
    CustomerView,
    DeliveryStats,
    DeliveryStatus,
    FeedPosition,
    NewWebhookEndpoint,
    OrderEventView,
    OrderView,
    Page,
    PageRequest,
    WebhookAttemptView,
    WebhookDeliveryView,
    WebhookEndpointView,
)
from opply.application.plain import from_plain
from opply.application.unit_of_work import StoreUnavailable

E = webhook_endpoints.c
D = webhook_deliveries.c
EV = order_events.c
PENDING = DeliveryStatus.PENDING.value
_ENDPOINT_COLUMNS = [E[name] for name in WebhookEndpointView._fields]
_DELIVERY_COLUMNS = [D[name] for name in WebhookDeliveryView._fields]
_HORIZON: ColumnElement[int] = literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", type_=BigInteger()
)


def _endpoint(row: Any) -> WebhookEndpointView:
    values = row._asdict()
    values["event_types"] = tuple(values["event_types"])
    return WebhookEndpointView(**values)


def _delivery(row: Any) -> WebhookDeliveryView:
    values = row._asdict()
    values["status"] = DeliveryStatus(values["status"])
    return WebhookDeliveryView(**values)


class SqlWebhookStore:
    """On an engine (each method its own transaction), or on a connection (each method a
    savepoint of the connection's transaction: the tests that roll everything back)."""

    def __init__(self, engine: Engine | Connection) -> None:
        self._bind = engine
        self._postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def _transaction(self, *, relaxed: bool = False) -> Iterator[Connection]:
        """A transaction; ``relaxed`` ones (the worker's) do not wait for their commit to
        reach the disk on PostgreSQL (``synchronous_commit = off`` for this transaction only):
        a crash of the server may forget the last fraction of a second of them, each whole or
        not at all, which costs at worst a delivery sent again (never an event: those are
        committed by the orders' own transactions)."""
        try:
            if isinstance(self._bind, Connection):
                with self._bind.begin_nested():
                    yield self._bind
                return
            with self._bind.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if relaxed and self._postgres:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
        except DBAPIError as error:
            if is_unavailable(error):
                raise StoreUnavailable(str(error.orig)) from error
            raise

    # --- endpoints -----------------------------------------------------------------------

    def add_endpoint(self, new: NewWebhookEndpoint) -> WebhookEndpointView:
        with self._transaction() as conn:
            row = conn.execute(
                insert(webhook_endpoints)
                .values(
                    url=new.url,
                    event_types=list(new.event_types),
                    description=new.description,
                    secret=new.secret,
                    is_active=True,
                    created_at=new.created_at,
                )
                .returning(*_ENDPOINT_COLUMNS)
            ).one()
        return _endpoint(row)

    def endpoint(self, endpoint_id: int) -> WebhookEndpointView | None:
        with self._transaction() as conn:
            row = conn.execute(select(*_ENDPOINT_COLUMNS).where(E.id == endpoint_id)).first()
        return None if row is None else _endpoint(row)

    def endpoint_page(self, page: PageRequest) -> Page[WebhookEndpointView]:
        with self._transaction() as conn:
            rows = conn.execute(
                select(*_ENDPOINT_COLUMNS)
                .order_by(E.id.desc())
                .limit(page.page_size)
                .offset(page.offset)
            ).all()
            total = conn.execute(select(func.count()).select_from(webhook_endpoints)).scalar_one()
        return Page(items=[_endpoint(r) for r in rows], total=total)

    def change_endpoint(
        self, endpoint_id: int, changes: Mapping[str, Any]
    ) -> WebhookEndpointView | None:
        values = dict(changes)
        if "event_types" in values:
            values["event_types"] = list(values["event_types"])
        if values.get("is_active"):
            values["failing_since"] = None  # enabled again: a fresh start
        with self._transaction() as conn:
            row = conn.execute(
                update(webhook_endpoints)
                .where(E.id == endpoint_id)
                .values(**values)
                .returning(*_ENDPOINT_COLUMNS)
            ).first()
        return None if row is None else _endpoint(row)

    def remove_endpoint(self, endpoint_id: int) -> bool:
        with self._transaction() as conn:
            # Its deliveries and their attempts go with it (ON DELETE CASCADE).
            gone = conn.execute(
                webhook_endpoints.delete().where(E.id == endpoint_id).returning(E.id)
            ).first()
        return gone is not None

    def delivery(self, delivery_id: int) -> WebhookDeliveryView | None:
        with self._transaction() as conn:
            row = conn.execute(select(*_DELIVERY_COLUMNS).where(D.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def delivery_page(self, endpoint_id: int, page: PageRequest) -> Page[WebhookDeliveryView]:
        with self._transaction() as conn:
            rows = conn.execute(
                select(*_DELIVERY_COLUMNS)
                .where(D.endpoint_id == endpoint_id)
                .order_by(D.id.desc())
                .limit(page.page_size)
                .offset(page.offset)
            ).all()
            total = conn.execute(
                select(func.count())
                .select_from(webhook_deliveries)
                .where(D.endpoint_id == endpoint_id)
            ).scalar_one()
        return Page(items=[_delivery(r) for r in rows], total=total)

    def attempts(self, delivery_id: int) -> list[WebhookAttemptView]:
        a = webhook_attempts.c
        with self._transaction() as conn:
            rows = conn.execute(
                select(*[a[name] for name in WebhookAttemptView._fields])
                .where(a.delivery_id == delivery_id)
                .order_by(a.id)
            ).all()
        return [WebhookAttemptView(**row._asdict()) for row in rows]

    def requeue_failed(self, delivery_id: int, at: datetime) -> WebhookDeliveryView | None:
        with self._transaction() as conn:
            row = conn.execute(
                update(webhook_deliveries)
                .where(D.id == delivery_id, D.status == DeliveryStatus.FAILED.value)
                .values(status=PENDING, next_attempt_at=at, locked_until=None)
                .returning(*_DELIVERY_COLUMNS)
            ).first()
        return None if row is None else _delivery(row)

    # --- the worker ----------------------------------------------------------------------

    def fan_out(self, at: datetime, limit: int) -> int | None:
        cursor = webhook_fanout.c
        with self._transaction(relaxed=True) as conn:
            where = conn.execute(
                select(cursor.tx_id, cursor.event_id)
                .where(cursor.id == 1)
                .with_for_update(skip_locked=True)
            ).first()
            if where is None:
                return None  # another worker is fanning out
            after = select(EV.id, EV.tx_id, EV.type).where(
                tuple_(EV.tx_id, EV.id) > tuple_(where.tx_id, where.event_id)
            )
            if self._postgres:
                after = after.where(EV.tx_id < _HORIZON)
            events = conn.execute(after.order_by(EV.tx_id, EV.id).limit(limit)).all()
            if not events:
                return 0
            endpoints = conn.execute(select(E.id, E.event_types).where(E.is_active)).all()
            rows = [
                {
                    "endpoint_id": endpoint.id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                }
                for event in events
                for endpoint in endpoints
                if event.type in endpoint.event_types
            ]
            if rows:
                conn.execute(insert(webhook_deliveries), rows)
            last = events[-1]
            conn.execute(
                update(webhook_fanout)
                .where(cursor.id == 1)
                .values(tx_id=last.tx_id, event_id=last.id)
            )
        return len(events)

    def claim(self, at: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        due = (
            select(D.id)
            .join(webhook_endpoints, E.id == D.endpoint_id)
            .where(
                D.status == PENDING,
                D.next_attempt_at <= at,
                or_(D.locked_until.is_(None), D.locked_until < at),
                E.is_active,
            )
            .order_by(D.next_attempt_at, D.id)
            .limit(limit)
            .with_for_update(of=webhook_deliveries, skip_locked=True)
            .scalar_subquery()
        )
        with self._transaction(relaxed=True) as conn:
            taken = conn.execute(
                update(webhook_deliveries)
                .where(D.id.in_(due))
                .values(attempts=D.attempts + 1, locked_until=at + lease)
                .returning(D.id, D.attempts)
            ).all()
            if not taken:
                return []
            attempt_of = {row.id: row.attempts for row in taken}
            rows = conn.execute(
                select(
                    D.id,
                    D.endpoint_id,
                    E.url,
                    E.secret,
                    E.failing_since,
                    EV.id.label("event_id"),
                    EV.tx_id,
                    EV.type,
                    EV.occurred_at,
                    EV.payload,
                    users.c.id.label("customer_id"),
                    users.c.username,
                )
                .join(webhook_endpoints, E.id == D.endpoint_id)
                .join(order_events, EV.id == D.event_id)
                .join(users, users.c.id == EV.customer_id)
                .where(D.id.in_(list(attempt_of)))
                .order_by(D.id)
            ).all()
        return [
            ClaimedDelivery(
                delivery_id=row.id,
                attempt=attempt_of[row.id],
                endpoint_id=row.endpoint_id,
                url=row.url,
                secret=row.secret,
                endpoint_failing=row.failing_since is not None,
                event=OrderEventView(
                    id=row.event_id,
                    type=row.type,
                    occurred_at=row.occurred_at,
                    order=from_plain(OrderView, row.payload)._replace(
                        customer=CustomerView(id=row.customer_id, username=row.username)
                    ),
                    position=FeedPosition(tx=row.tx_id, id=row.event_id),
                ),
            )
            for row in rows
        ]

    def record(self, result: AttemptResult) -> bool:
        # Built once (below the class): this runs once per attempt, and building a statement
        # costs more CPU than sending it.
        with self._transaction(relaxed=True) as conn:
            kept = conn.execute(
                _RECORD,
                {
                    "b_id": result.delivery_id,
                    "b_attempt": result.attempt,
                    "b_status": result.status.value,
                    "b_code": result.status_code,
                    "b_error": result.error,
                    "b_next": result.next_attempt_at,
                },
            ).first()
            if kept is None:
                return False  # the lease ran out and another attempt took the delivery
            conn.execute(
                _ATTEMPT,
                {
                    "b_delivery": result.delivery_id,
                    "b_at": result.at,
                    "b_code": result.status_code,
                    "b_error": result.error,
                    "b_ms": result.duration_ms,
                },
            )
            if result.status is DeliveryStatus.DELIVERED:
                if result.endpoint_failing:  # else nothing to reset: a statement saved
                    conn.execute(_SUCCEEDED, {"b_endpoint": kept.endpoint_id})
            else:
                conn.execute(
                    _FAILED,
                    {
                        "b_endpoint": kept.endpoint_id,
                        "b_at": result.at,
                        "b_cutoff": result.failing_cutoff,
                        "b_disable": result.disable_endpoint,
                    },
                )
        return True

    def release(self, claimed: ClaimedDelivery) -> None:
        with self._transaction(relaxed=True) as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(D.id == claimed.delivery_id, D.attempts == claimed.attempt)
                .values(attempts=D.attempts - 1, locked_until=None)
            )

    def stats(self) -> DeliveryStats:
        with self._transaction() as conn:
            rows = conn.execute(
                select(D.status, func.count(), func.min(D.created_at)).group_by(D.status)
            ).all()
        counts = {row[0]: row[1] for row in rows}
        oldest = next((row[2] for row in rows if row[0] == PENDING), None)
        return DeliveryStats(
            pending=counts.get(PENDING, 0),
            delivered=counts.get(DeliveryStatus.DELIVERED.value, 0),
            failed=counts.get(DeliveryStatus.FAILED.value, 0),
            oldest_pending_created_at=oldest,
        )


_RECORD = (
    update(webhook_deliveries)
    .where(D.id == bindparam("b_id"), D.attempts == bindparam("b_attempt"), D.status == PENDING)
    .values(
        status=bindparam("b_status"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next", type_=D.next_attempt_at.type),
        locked_until=None,
    )
    .returning(D.endpoint_id)
)
_ATTEMPT = insert(webhook_attempts).values(
    delivery_id=bindparam("b_delivery"),
    attempted_at=bindparam("b_at", type_=webhook_attempts.c.attempted_at.type),
    status_code=bindparam("b_code"),
    error=bindparam("b_error"),
    duration_ms=bindparam("b_ms"),
)
_SUCCEEDED = (
    update(webhook_endpoints)
    .where(E.id == bindparam("b_endpoint"), E.failing_since.is_not(None))
    .values(failing_since=None)
)
_FAILING_SINCE = func.coalesce(E.failing_since, bindparam("b_at", type_=E.failing_since.type))
# Failing for 5 days (since the cutoff) or a 410 (b_disable) disables the endpoint.
_FAILED = (
    update(webhook_endpoints)
    .where(E.id == bindparam("b_endpoint"))
    .values(
        failing_since=_FAILING_SINCE,
        is_active=case(
            (bindparam("b_disable", type_=Boolean()), false()),
            (bindparam("b_cutoff", type_=E.failing_since.type) >= _FAILING_SINCE, false()),
            else_=E.is_active,
        ),
    )
)
