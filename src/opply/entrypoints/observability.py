"""What an operator needs around every request: request ids, one JSON log line, security
headers, CORS, proxy headers and Prometheus metrics.

All of it is HTTP plumbing, so it lives here and not in the use cases: the metrics for orders
placed and out-of-stock refusals are counted from the responses of the order endpoint.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from werkzeug.middleware.proxy_fix import ProxyFix

from opply.application.dto import DeliveryStatus
from opply.application.ports import WebhookStore
from opply.application.unit_of_work import StoreUnavailable
from opply.entrypoints.api.headers import RESPONSE_HEADERS
from opply.entrypoints.config import Settings
from opply.entrypoints.jsonlog import configure_logging, request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ORDERS_ROUTE = "/api/v1/orders/"
UNMATCHED_ROUTE = "<unmatched>"
_RULE_VARIABLE = re.compile(r"<(?:[^:>]*:)?([A-Za-z_][A-Za-z0-9_]*)>")

request_log = logging.getLogger("opply.request")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"

CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-ID"
CORS_ALLOW_METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
# Every response header the OpenAPI document declares, so a browser client can read them too.
CORS_EXPOSE_HEADERS = ", ".join(RESPONSE_HEADERS)
CORS_MAX_AGE = "600"

# Module-level, so each process registers them once however many apps the tests create. In
# multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before this import) each gunicorn worker
# writes its values to files there, and /metrics adds up every worker's files.
HTTP_REQUESTS = Counter(
    "opply_http_requests",
    "HTTP requests answered, by route template (not the raw path) and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "opply_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ORDERS_PLACED = Counter("opply_orders_placed", "Orders placed (idempotent replays not counted)")
OUT_OF_STOCK = Counter(
    "opply_orders_out_of_stock", "Orders refused because a line asked for more than the stock"
)


def sane_request_id(value: str | None) -> str:
    """The client's request id when it is short and plain, otherwise a new one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def init_observability(app: Flask, settings: Settings) -> None:
    """Hook request ids, logging, headers, CORS, proxy handling and /metrics into ``app``."""
    configure_logging(settings.log_level)
    if settings.trusted_proxy_hops > 0:
        hops = settings.trusted_proxy_hops
        # Only as many X-Forwarded-For/-Proto values as there are proxies we run are believed:
        # the rest were written by the client. X-Forwarded-Host and -Port never are: an ALB does
        # not set them, so whatever arrives was written by the client, and believing it would put
        # the client's host into the links we build (pagination's next and previous).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0
        )
    app.wsgi_app = LimitStreamedBody(app.wsgi_app, app)  # type: ignore[method-assign]
    allowed_origins = frozenset(settings.cors_origins)

    @app.before_request
    def _start() -> Response | None:
        g.opply_started = time.perf_counter()
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id = request_id
        g.opply_request_id_token = request_id_var.set(request_id)
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and _origin_allowed(allowed_origins)
        ):
            return _preflight()
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or sane_request_id(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        _security_headers(response, settings)
        _cors_headers(response, allowed_origins)
        _observe(response, request_id)
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        token = g.pop("opply_request_id_token", None)
        if token is not None:
            request_id_var.reset(token)

    # A plain Flask route, so it stays out of the mobile app's OpenAPI document: it is for the
    # operators' Prometheus, speaks Prometheus' text format, and is documented in the README.
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


class LimitStreamedBody:
    """Enforce ``MAX_CONTENT_LENGTH`` on bodies sent without ``Content-Length`` (chunked).

    Werkzeug checks a declared length when the body is read, but a chunked body is only cut at
    the limit while being read: the view then sees the first MiB, a truncated document, and
    answers 400 instead of 413. So such a body is read here, at most one byte past the limit:
    within it, the view gets it with its length set; past it, the request declares a length
    over the limit, so that reading it is a 413 exactly as for a declared length (and an
    operation that reads no body answers as usual).
    """

    def __init__(self, wsgi_app: Any, app: Flask) -> None:
        self._wsgi_app = wsgi_app
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        limit = self._app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and not environ.get("CONTENT_LENGTH") and _is_chunked(environ):
            body = environ["wsgi.input"].read(limit + 1)
            length = len(body)
            if length > limit:
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(length)
            # Werkzeug ignores a length beside these: the body is no longer streamed.
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.pop("wsgi.input_terminated", None)
        return self._wsgi_app(environ, start_response)


def _is_chunked(environ: dict[str, Any]) -> bool:
    encoding = environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return bool(environ.get("wsgi.input_terminated")) or "chunked" in encoding


def metrics_view() -> Response:
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    payload += webhook_metrics(current_app.extensions["container"].webhook_store())
    return Response(payload, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _WebhookCollector:
    """The delivery queue as it stands, read from the database at scrape time (one GROUP BY):
    every worker process and instance sees the same queue, so nothing is added up."""

    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self._store.stats()
        except StoreUnavailable:
            return  # the scrape still answers; the request metrics tell the rest
        deliveries = GaugeMetricFamily(
            "opply_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status in DeliveryStatus:
            deliveries.add_metric([status.value], getattr(stats, status.value))
        yield deliveries
        oldest = stats.oldest_pending_created_at
        age = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        yield GaugeMetricFamily(
            "opply_webhook_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery (0 when none is pending)",
            value=max(0.0, age),
        )


def webhook_metrics(store: WebhookStore) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_WebhookCollector(store))
    return generate_latest(registry)


def _origin_allowed(allowed: frozenset[str]) -> bool:
    origin = request.headers.get("Origin")
    return bool(origin) and ("*" in allowed or origin in allowed)


def _preflight() -> Response:
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def _cors_headers(response: Response, allowed: frozenset[str]) -> None:
    if not allowed:
        return  # closed: no browser on another origin may read our answers
    response.vary.add("Origin")
    if _origin_allowed(allowed):
        # Bearer tokens, not cookies: no Allow-Credentials, so "*" stays harmless.
        response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def _security_headers(response: Response, settings: Settings) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if settings.is_production and request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)


@functools.lru_cache(maxsize=256)
def route_template(rule: str) -> str:
    """``/api/v1/orders/<int(min=1):order_id>/`` -> ``/api/v1/orders/{order_id}/``, as in the
    OpenAPI document: one label per route, whatever the ids in the path."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)


@functools.lru_cache(maxsize=1024)
def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram of one (method, route, status): looked up
    once, as ``labels()`` validates and locks on every call."""
    labels = (method, route, str(status))
    return HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels)


def _route() -> str:
    rule = request.url_rule
    return route_template(rule.rule) if rule is not None else UNMATCHED_ROUTE


def _observe(response: Response, request_id: str) -> None:
    started = g.get("opply_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    route = _route()
    status = response.status_code
    requests, latency = _series(request.method, route, status)
    requests.inc()
    latency.observe(duration)
    if route == ORDERS_ROUTE and request.method == "POST":
        _count_order_outcome(response)
    level = logging.ERROR if status >= 500 else logging.INFO
    if not request_log.isEnabledFor(level):
        return

    principal = g.get("principal")
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,  # never the query string or body: they may carry personal data
        "route": route,
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "request_id": request_id,
        "user_id": getattr(principal, "user_id", None),
        "remote_addr": request.remote_addr,
    }
    request_log.log(level, "%s %s %s", request.method, request.path, status, extra=fields)


def _count_order_outcome(response: Response) -> None:
    if response.status_code == 201 and response.headers.get("Idempotent-Replayed") != "true":
        ORDERS_PLACED.inc()
    elif response.status_code == 409:
        body = response.get_json(force=True, silent=True)
        if isinstance(body, dict) and body.get("code") == "out_of_stock":
            OUT_OF_STOCK.inc()
