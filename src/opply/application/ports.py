"""Ports: what the use cases need from the outside world, as Protocols.

Repositories load aggregates to change them, inside a write unit of work; reads (the views the
API and the admin show) are the read unit of work's own queries (``unit_of_work.ReadUnitOfWork``).
Adapters in ``opply.adapters`` implement each port twice: on SQLAlchemy and in memory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from opply.application.dto import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryStats,
    NewWebhookEndpoint,
    OrderView,
    Page,
    PageRequest,
    RecordedEvent,
    WebhookAttemptView,
    WebhookDeliveryView,
    WebhookEndpointView,
)
from opply.domain.model import (
    Address,
    AddressBook,
    IdempotencyRecord,
    Order,
    Product,
    RefreshToken,
    User,
)


class ProductRepository(Protocol):
    def add(self, product: Product) -> None:
        """Store a new product; it has its ``id`` (and, if it had none, the SKU made of it)
        when this returns. A SKU another product has (ignoring case) is ``SkuTaken``, here or
        at the commit of an edit."""
        ...

    def get_for_update(self, product_ids: Collection[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids``, locked against concurrent writers
        until the unit of work ends. Locks are taken in id order so that two orders naming the
        same products never deadlock."""
        ...


class OrderRepository(Protocol):
    # Every order this unit of work added or loaded: the unit of work writes down the events
    # they recorded when it commits.
    seen: list[Order]

    def add(self, order: Order) -> None:
        """Store a new order and its lines; it has its ``id`` when this returns."""
        ...

    def get_for_update(self, order_id: int, *, customer_id: int | None = None) -> Order | None:
        """The order with its lines, locked until the unit of work ends; with ``customer_id``,
        only if it is that customer's (another's order is 'not there')."""
        ...


class EventOutbox(Protocol):
    """Where the unit of work writes the events its aggregates recorded, in its transaction;
    the customer's feed and the webhook worker read them from there."""

    def add(self, events: Sequence[RecordedEvent]) -> None: ...


class AddressRepository(Protocol):
    def book_for_update(self, customer_id: int) -> AddressBook:
        """The customer's whole book, with the customer locked until the unit of work ends:
        every change to one book takes its turn, so exactly one address stays the default."""
        ...

    def add(self, address: Address) -> None:
        """Store a new address of a book loaded here; it has its ``id`` after the commit."""
        ...

    def remove(self, address: Address) -> None: ...

    def for_order(self, customer_id: int, address_id: int | None) -> Address | None:
        """The customer's address ``address_id``, or their default when it is None; None if
        there is no such address of theirs (or no default: an empty book)."""
        ...


class InvoiceCounter(Protocol):
    def next(self, year: int) -> int:
        """The next invoice number of ``year`` (1 for the first), taken in the current
        transaction: concurrent takers wait for it to end, and a rollback gives it back, so
        the numbers of committed invoices have no gaps and no repeats."""
        ...


class UserRepository(Protocol):
    def add(self, user: User) -> None: ...

    def get(self, user_id: int) -> User | None: ...

    def get_by_username(self, username: str) -> User | None: ...


class RefreshTokenRepository(Protocol):
    def add(self, token: RefreshToken) -> None: ...

    def get_for_update(self, jti: str) -> RefreshToken | None: ...

    def revoke_family(self, family_id: str, at: datetime) -> None:
        """End one login: every refresh token of the family, and its access tokens."""
        ...

    def revoke_all_of_user(self, user_id: int, at: datetime) -> None:
        """End every login of a user (a new password)."""
        ...


class IdempotencyRepository(Protocol):
    def claim(self, customer_id: int, key: str, at: datetime) -> bool:
        """Reserve ``key`` for this customer in the current transaction.

        False if it is already taken. A concurrent claim of the same key waits until the first
        transaction ends (the database's unique index does the waiting), so two racing retries
        can never both place an order."""
        ...

    def get(self, customer_id: int, key: str) -> IdempotencyRecord | None:
        """The stored answer of a claimed key, or None while its transaction is still open."""
        ...

    def save(self, record: IdempotencyRecord) -> None:
        """Fill in the claimed key with the answer; same transaction as the order."""
        ...

    def purge_older_than(self, cutoff: datetime) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Seller:
    """Who sells, as every invoice names them (settings SELLER_NAME, SELLER_ADDRESS,
    SELLER_VAT_ID)."""

    name: str
    address: str
    vat_id: str


class InvoiceRenderer(Protocol):
    """An issued invoice as a file: a pure function of the order (and the seller), so the same
    order always gives the same bytes."""

    media_type: str

    def render(self, order: OrderView) -> bytes: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real verification, for unknown usernames."""
        ...


@dataclass(frozen=True, kw_only=True)
class AccessClaims:
    user_id: int
    is_staff: bool
    login: str  # the refresh token family it was issued with
    token_version: int  # the user's token version when it was issued


@dataclass(frozen=True, kw_only=True)
class RefreshClaims:
    user_id: int
    jti: str
    family_id: str


@dataclass(frozen=True, kw_only=True)
class IssuedRefresh:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


class TokenService(Protocol):
    def issue_access(self, user_id: int, is_staff: bool, login: str, token_version: int) -> str: ...

    def issue_refresh(self, user_id: int, family_id: str) -> IssuedRefresh: ...

    def read_access(self, token: str) -> AccessClaims:
        """Raises ``InvalidToken`` unless the token is a valid, unexpired access token."""
        ...

    def read_refresh(self, token: str) -> RefreshClaims:
        """Raises ``InvalidToken`` unless the token is a valid, unexpired refresh token."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class WebhookStore(Protocol):
    """The staff's webhook endpoints and the delivery queue (one SQL and one in-memory
    implementation, run through the same contract tests). Each method is its own transaction:
    the worker's steps must not hold locks while it talks to a receiver."""

    # --- endpoints (staff) ---
    def add_endpoint(self, new: NewWebhookEndpoint) -> WebhookEndpointView: ...

    def endpoint(self, endpoint_id: int) -> WebhookEndpointView | None: ...

    def endpoint_page(self, page: PageRequest) -> Page[WebhookEndpointView]:
        """Newest first."""
        ...

    def change_endpoint(
        self, endpoint_id: int, changes: Mapping[str, Any]
    ) -> WebhookEndpointView | None:
        """Set the given fields (url, event_types, description, is_active, secret)."""
        ...

    def remove_endpoint(self, endpoint_id: int) -> bool: ...

    def delivery(self, delivery_id: int) -> WebhookDeliveryView | None: ...

    def delivery_page(self, endpoint_id: int, page: PageRequest) -> Page[WebhookDeliveryView]:
        """An endpoint's deliveries, newest first."""
        ...

    def attempts(self, delivery_id: int) -> list[WebhookAttemptView]:
        """A delivery's attempts, oldest first."""
        ...

    def requeue_failed(self, delivery_id: int, at: datetime) -> WebhookDeliveryView | None:
        """A failed delivery back to pending, due at ``at``; None if it is not failed."""
        ...

    # --- the worker ---
    def fan_out(self, at: datetime, limit: int) -> int | None:
        """One delivery per active endpoint that wants it, for each event after the fan-out's
        cursor that no running transaction can still precede (as the customer's feed reads),
        at most ``limit`` events; moves the cursor. Returns the number of events passed, or
        None when another worker is fanning out right now."""
        ...

    def claim(self, at: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        """Take the lease of at most ``limit`` pending deliveries due at ``at`` whose endpoint is
        active and whose lease (if any) has run out, counting one more attempt for each."""
        ...

    def record(self, result: AttemptResult) -> bool:
        """Record an attempt's result if the lease is still ours (False otherwise)."""
        ...

    def release(self, claimed: ClaimedDelivery) -> None:
        """Give a lease back unattempted (a worker stopping): due again at once."""
        ...

    def stats(self) -> DeliveryStats: ...


class UrlGuard(Protocol):
    """Refuses webhook URLs a server must not call (``UnsafeWebhookUrl``)."""

    def check(self, url: str) -> None: ...
