"""Abuse limits on the token endpoints (Flask-Limiter).

``POST /api/token/`` is limited per username (taken from the JSON body, when it has one) and per
client address; ``POST /api/token/refresh/`` per client address. Counts live in memory by
default (one count per process) and in Redis when ``RATELIMIT_STORAGE_URI`` points there, so
every worker and every instance shares them. If Redis stops answering, the limits carry on in
memory rather than letting every request through or failing them all.

A refused request is a ``429`` problem with ``code: rate_limited`` and ``Retry-After``. Every
limited response carries the rate limit fields of draft-ietf-httpapi-ratelimit-headers-06:
``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the window
resets) and ``RateLimit-Policy`` (e.g. ``10;w=60``).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from limits import parse_many
from werkzeug.exceptions import HTTPException

from opply.entrypoints.api.problems import problem
from opply.entrypoints.config import ConfigError, Settings

AUTH_BLUEPRINT = "auth"
LOGIN_ENDPOINT = f"{AUTH_BLUEPRINT}.Token"
REFRESH_ENDPOINT = f"{AUTH_BLUEPRINT}.Refresh"
STRATEGY = "moving-window"  # no burst of twice the limit across a window boundary
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


def _username_key() -> str:
    return login_username() or ""


def _check_limit_string(name: str, value: str) -> str:
    try:
        parse_many(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a rate like '10/minute', got {value!r}") from exc
    return value


def init_limits(app: Flask, settings: Settings) -> Limiter:
    """Limit the token endpoints of ``app``; call after the API blueprints are registered."""
    login_limit = _check_limit_string("LOGIN_RATE_LIMIT", settings.login_rate_limit)
    login_address_limit = _check_limit_string(
        "LOGIN_ADDRESS_RATE_LIMIT", settings.login_address_rate_limit
    )
    refresh_limit = _check_limit_string("REFRESH_RATE_LIMIT", settings.refresh_rate_limit)

    # One Limiter (and so one in-memory store) per app: tests get a clean count each.
    limiter = Limiter(
        key_func=client_address,
        storage_uri=settings.ratelimit_storage_uri,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1}
        if settings.ratelimit_storage_uri.startswith(("redis://", "rediss://"))
        else {},
        strategy=STRATEGY,
        headers_enabled=False,  # ours follow the IETF draft; Flask-Limiter's are X-RateLimit-*
        in_memory_fallback_enabled=True,
        key_prefix="opply",
        enabled=settings.ratelimit_enabled,
    )
    limiter.init_app(app)
    _only_on_blueprint(app, limiter, AUTH_BLUEPRINT)

    _limit_view(
        app,
        LOGIN_ENDPOINT,
        limiter.limit(
            login_limit,
            key_func=_username_key,
            methods=["POST"],
            # No username in the body: nothing to count per user; the address limit still counts.
            exempt_when=lambda: login_username() is None,
        ),
        limiter.limit(login_address_limit, methods=["POST"]),
    )
    _limit_view(app, REFRESH_ENDPOINT, limiter.limit(refresh_limit, methods=["POST"]))

    @app.errorhandler(RateLimitExceeded)
    def _too_many(error: RateLimitExceeded) -> Response:
        # The window's full length is an upper bound; the after_request hook below narrows it.
        return problem(
            429,
            "rate_limited",
            "Too many requests; wait for the number of seconds in Retry-After and try again.",
            title="Too many requests",
            headers={"Retry-After": str(error.limit.limit.get_expiry())},
        )

    def _ratelimit_fields(response: Response) -> Response:
        if limiter.enabled:
            _add_fields(response, limiter.current_limit, limiter.current_limits)
        return response

    app.after_request_funcs.setdefault(AUTH_BLUEPRINT, []).append(_ratelimit_fields)

    app.extensions["opply_limiter"] = limiter
    return limiter


def _only_on_blueprint(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Run the limiter's request hooks on ``blueprint``'s requests only, not on every request.

    ``init_app`` registers three app-wide hooks: a ``before_request`` check (for default and
    application limits, which we have none of), an ``after_request`` one and a
    ``teardown_request`` one. Only the token endpoints have limits, and their decorators check
    them when the view is called, so on any other request the hooks found nothing to do at
    about 0.1 ms of CPU each (8% of a product read). They are moved, unchanged, to the token
    endpoints' blueprint, whose requests still run all three.
    """
    every_kind: tuple[dict[Any, list[Any]], ...] = (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    )
    for hooks in every_kind:
        app_wide = hooks.get(None, [])
        mine = [hook for hook in app_wide if _belongs_to(hook, limiter)]
        if limiter.enabled and not mine:  # a disabled limiter registers none
            raise RuntimeError("flask-limiter registered no request hooks: has it changed?")
        hooks[None] = [hook for hook in app_wide if hook not in mine]
        hooks.setdefault(blueprint, []).extend(mine)


def _belongs_to(hook: Any, limiter: Limiter) -> bool:
    """A bound method of ``limiter``, or a ``functools.partial`` of a method given it."""
    return getattr(hook, "__self__", None) is limiter or (
        getattr(hook, "args", ())[:1] == (limiter,)
    )


def _limit_view(app: Flask, endpoint: str, *decorators: Callable[[Any], Any]) -> None:
    view = app.view_functions[endpoint]
    for decorate in decorators:
        view = decorate(view)
    app.view_functions[endpoint] = view


def _add_fields(
    response: Response, current: RequestLimit | None, every: list[RequestLimit]
) -> None:
    if current is None:
        return
    try:
        reset_in = max(0, math.ceil(current.window[0] - time.time()))
        remaining = max(0, current.remaining)
    except Exception:  # a storage hiccup must not turn an answer into a 500
        return
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = "0" if current.breached else str(remaining)
    response.headers["RateLimit-Reset"] = str(reset_in)
    policies = dict.fromkeys(
        f"{lim.limit.amount};w={lim.limit.get_expiry()}" for lim in every or [current]
    )
    response.headers["RateLimit-Policy"] = ", ".join(policies)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset_in))
