"""Abuse limits on the token endpoints, on the ``limits`` library (Flask-Limiter's own engine).

``POST /api/token/`` is limited per username (taken from the JSON body, when it has one) and per
client address; ``POST /api/token/refresh/`` per client address. Counts use a moving window
(no burst of twice the limit across a window boundary) in memory by default (one count per
process) and in Redis when ``RATELIMIT_STORAGE_URI`` points there, so every worker and every
instance shares them. If the store stops answering, the limits carry on in memory for a while
rather than letting every request through or failing them all.

Why not Flask-Limiter: it hooks every request of the app (before, after and teardown) to look
for limits that only two endpoints have, at about 0.1 ms of CPU each, and offers no public way
to confine those hooks. Here the two decorators below are the whole cost, paid by those two
endpoints alone; ``limits`` does the counting, in memory or with Redis' atomic scripts.

A refused request is a ``429`` problem with ``code: rate_limited`` and ``Retry-After``. Every
answer of a limited endpoint carries the fields of draft-ietf-httpapi-ratelimit-headers-06:
``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the window
resets) and ``RateLimit-Policy`` (e.g. ``10;w=60``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import HTTPException

from opply.entrypoints.api.problems import RateLimited
from opply.entrypoints.config import ConfigError, Settings

log = logging.getLogger("opply.limits")
F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "opply_limits"
KEY_PREFIX = "opply"
STORE_RETRY_SECONDS = 30  # after a store failure, counts stay in memory this long
MAX_USERNAME_KEY_CHARS = 150  # the longest username there can be


def client_address() -> str:
    """The caller's address; behind trusted proxies ProxyFix has already put the real one here."""
    return request.remote_addr or "unknown"


def login_username() -> str | None:
    """The username a login attempt is for, or ``None`` when the body does not name one.

    The body has not been validated yet (the limit runs first), so anything may be here:
    invalid JSON, a list, a number, a huge string. Usernames are compared case-insensitively
    and hashed, so the storage key stays short and plain whatever was sent.
    """
    try:
        body = request.get_json(silent=True)
    except HTTPException:  # e.g. 413: the view's own parsing will answer it
        return None
    if not isinstance(body, dict):
        return None
    username = body.get("username")
    if not isinstance(username, str) or not username.strip():
        return None
    normalised = username.strip().casefold()[:MAX_USERNAME_KEY_CHARS]
    return "user:" + hashlib.sha256(normalised.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One limit, counted per the key ``key()`` returns (``None``: this request is exempt)."""

    name: str
    limit: RateLimitItem
    key: Callable[[], str | None]


@dataclass(frozen=True, kw_only=True)
class Count:
    rule: Rule
    allowed: bool
    remaining: int
    reset_at: float


class RateLimits:
    """The app's rules and the store that counts them."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.ratelimit_enabled
        self.storage_uri = settings.ratelimit_storage_uri
        options: dict[str, float] = {}
        if self.storage_uri.startswith(("redis://", "rediss://")):
            options = {"socket_connect_timeout": 1, "socket_timeout": 1}
        self._store = MovingWindowRateLimiter(storage_from_string(self.storage_uri, **options))
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._store_down_until = 0.0
        self.login = (
            Rule(
                name="login per username",
                limit=_limit("LOGIN_RATE_LIMIT", settings.login_rate_limit),
                key=login_username,
            ),
            Rule(
                name="login per address",
                limit=_limit("LOGIN_ADDRESS_RATE_LIMIT", settings.login_address_rate_limit),
                key=client_address,
            ),
        )
        self.refresh = (
            Rule(
                name="refresh per address",
                limit=_limit("REFRESH_RATE_LIMIT", settings.refresh_rate_limit),
                key=client_address,
            ),
        )

    @property
    def storage(self) -> Storage:
        return self._store.storage

    def hit(self, rule: Rule, key: str) -> Count:
        """Count one request against ``rule`` for ``key``."""
        if time.monotonic() >= self._store_down_until:
            try:
                return self._hit(self._store, rule, key)
            except Exception:  # the store's own errors (redis, network): keep limiting
                log.warning("rate limit store unreachable: counting in memory", exc_info=True)
                self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS
        return self._hit(self._memory, rule, key)

    @staticmethod
    def _hit(limiter: MovingWindowRateLimiter, rule: Rule, key: str) -> Count:
        allowed = limiter.hit(rule.limit, KEY_PREFIX, rule.name, key)
        reset_at, remaining = limiter.get_window_stats(rule.limit, KEY_PREFIX, rule.name, key)
        return Count(rule=rule, allowed=allowed, remaining=remaining, reset_at=reset_at)


def _limit(name: str, value: str) -> RateLimitItem:
    try:
        [item] = parse_many(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be one rate like '10/minute', got {value!r}") from exc
    return item


def init_limits(app: Flask, settings: Settings) -> RateLimits:
    limits = RateLimits(settings)
    app.extensions[EXTENSION] = limits
    return limits


def _limited(rules: Callable[[RateLimits], tuple[Rule, ...]]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            limits: RateLimits = current_app.extensions[EXTENSION]
            if not limits.enabled:
                return view(*args, **kwargs)
            counts = []
            for rule in rules(limits):
                key = rule.key()
                if key is not None:
                    counts.append(limits.hit(rule, key))
            g.opply_rate_counts = counts
            refused = [c for c in counts if not c.allowed]
            if refused:
                wait = max(1, math.ceil(max(c.reset_at for c in refused) - time.time()))
                raise RateLimited(
                    "Too many requests; wait for the number of seconds in Retry-After and "
                    "try again.",
                    headers={"Retry-After": str(wait)},
                )
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


login_limits = _limited(lambda limits: limits.login)
refresh_limits = _limited(lambda limits: limits.refresh)


def rate_limit_fields(response: Response) -> Response:
    """After a limited endpoint's request, whatever its answer: the draft's fields, for the
    limit closest to refusing."""
    counts: list[Count] = g.pop("opply_rate_counts", [])
    if not counts:
        return response
    current = min(counts, key=lambda c: (c.remaining, -c.reset_at))
    reset_in = max(0, math.ceil(current.reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.rule.limit.amount)
    response.headers["RateLimit-Remaining"] = "0" if not current.allowed else str(current.remaining)
    response.headers["RateLimit-Reset"] = str(reset_in)
    policies = dict.fromkeys(f"{c.rule.limit.amount};w={c.rule.limit.get_expiry()}" for c in counts)
    response.headers["RateLimit-Policy"] = ", ".join(policies)
    return response
