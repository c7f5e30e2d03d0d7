"""The bare reference handler of `make bench`: plain Flask, SQLAlchemy Core and PyJWT sending
the service's own SQL, so that "service vs bare" measures what the service's structure costs.

It serves four requests of the API with the same answers: a page of the catalogue (with its
count), one product, placing an order (with an Idempotency-Key and its event) and a page of the
caller's order history. Per request it does what the service must do and nothing more: decode the
bearer token, check its user against the database (the statement of the service's
``user_access``), run the service's statements word for word, and write the same JSON. It has
no logging, metrics, rate limits, ETags, OpenAPI or error table: those are the service's cost.

The statements are the service's, as its SQLAlchemy constructs compile on PostgreSQL; `make
bench` compares both apps' statements per request and says so when they no longer match.

    gunicorn --config gunicorn.conf.py --pythonpath bench 'bare_app:create_app()'

reads DATABASE_URL, SECRET_KEY and DB_POOL_SIZE as the service does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

import jwt
from flask import Flask, request
from sqlalchemy import Connection, Engine, Row, TextClause, create_engine, text

CENT = Decimal("0.01")
MAX_LINES = 100
MAX_PAGE_SIZE = 100
CURRENCY = "EUR"
ISSUER = "opply"
LEEWAY = timedelta(seconds=10)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "jti", "type", "fam", "ver"]
PRODUCT_COLUMNS = (
    "products.id, products.sku, products.name, products.description, products.unit, "
    "products.price, products.vat_rate, products.quantity_in_stock, "
    "products.min_order_quantity, products.case_size"
)
LINE_COLUMNS = ("product_id", "sku", "product_name", "unit", "unit_price", "vat_rate", "quantity")

# --- the service's statements -------------------------------------------------------------------

USER_ACCESS = text(
    "SELECT users.username, users.is_active, users.is_staff, users.token_version, "
    "EXISTS (SELECT * FROM refresh_tokens WHERE refresh_tokens.family_id = :family_id "
    "AND refresh_tokens.revoked_at IS NOT NULL) AS login_revoked "
    "FROM users WHERE users.id = :id"
)
_SIZE = "(SELECT product_stats.product_count FROM product_stats WHERE product_stats.id = :id_1)"
CATALOGUE_FIRST_PAGE = text(
    f"SELECT {PRODUCT_COLUMNS}, {_SIZE} AS total FROM products ORDER BY products.id LIMIT :limit"
)
CATALOGUE_DEEP_PAGE = text(
    f"SELECT {PRODUCT_COLUMNS}, {_SIZE} AS total FROM products WHERE products.id >= "
    f"CASE WHEN (:offset >= {_SIZE}) THEN NULL "
    f"WHEN (:offset * :param_1 > {_SIZE}) THEN (SELECT products.id FROM products "
    f"ORDER BY products.id DESC LIMIT :param_2 OFFSET ({_SIZE} - :offset) - :param_3) "
    "ELSE (SELECT products.id FROM products ORDER BY products.id LIMIT :param_4 OFFSET :offset) "
    "END ORDER BY products.id LIMIT :limit"
)
CATALOGUE_SIZE = text("SELECT product_stats.product_count FROM product_stats")
PRODUCT = text(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE products.id = :id")
CLAIM_KEY = text(
    "INSERT INTO idempotency_keys (customer_id, key, fingerprint, created_at) "
    "VALUES (:customer_id, :key, :fingerprint, :created_at) ON CONFLICT DO NOTHING"
)
KEPT_ANSWER = text(
    "SELECT idempotency_keys.customer_id, idempotency_keys.key, idempotency_keys.fingerprint, "
    "idempotency_keys.created_at, idempotency_keys.order_id, idempotency_keys.response "
    "FROM idempotency_keys WHERE idempotency_keys.customer_id = :customer_id_1 "
    "AND idempotency_keys.key = :key_1 AND idempotency_keys.order_id IS NOT NULL"
)
KEEP_ANSWER = text(
    "UPDATE idempotency_keys SET fingerprint=:b_fingerprint, order_id=:b_order_id, "
    "response=:b_response\\:\\:JSON "
    "WHERE idempotency_keys.customer_id = :b_customer_id AND idempotency_keys.key = :b_key"
)
# The order's row: no delivery address here (its columns NULL, as the service writes them for
# an order without one) and its net and VAT totals (migration 0008).
DELIVERY_COLUMNS = tuple(
    f"delivery_{name}"
    for name in (
        "recipient",
        "company",
        "line1",
        "line2",
        "postal_code",
        "city",
        "country",
        "phone",
    )
)
NO_DELIVERY = dict.fromkeys(DELIVERY_COLUMNS)
_ORDER_COLUMNS = ("customer_id", "status", "currency", "created_at", *DELIVERY_COLUMNS)
_ORDER_COLUMNS += ("subtotal", "vat_total")
INSERT_ORDER = text(
    f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _ORDER_COLUMNS)}) RETURNING orders.id"
)
# The customer's default address, copied into the order (v1.2): the service reads it in every
# order's transaction, after the key and before the products.
DEFAULT_ADDRESS = text(
    "SELECT addresses.id, addresses.customer_id, addresses.label, addresses.recipient, "
    "addresses.company, addresses.line1, addresses.line2, addresses.postal_code, "
    "addresses.city, addresses.country, addresses.phone, addresses.is_default FROM addresses "
    "WHERE addresses.customer_id = :customer_id_1 AND addresses.is_default"
)
# The order's event, in its transaction (issue 18): the service's outbox INSERT, one row.
INSERT_EVENT = text(
    "INSERT INTO order_events (tx_id, type, order_id, customer_id, occurred_at, payload) "
    "VALUES (pg_current_xact_id()::text::bigint, :b_type, :b_order_id, :b_customer_id, "
    ":b_occurred_at, :b_payload\\:\\:JSON) RETURNING order_events.id"
)
ONE_STOCK = text(
    "UPDATE products SET quantity_in_stock=:quantity_in_stock WHERE products.id = :products_id"
)
_PICKED_EXTRA = ("invoice_number", *DELIVERY_COLUMNS)
ORDER_PAGE = text(
    "SELECT picked.id, picked.status, picked.created_at, picked.shipped_at, "
    "picked.delivered_at, picked.cancelled_at, picked.currency, picked.customer_id, "
    + "".join(f"picked.{c}, " for c in _PICKED_EXTRA)
    + "users.username, order_lines.product_id, order_lines.sku, order_lines.product_name, "
    "order_lines.unit, order_lines.unit_price, order_lines.vat_rate, order_lines.quantity, "
    "(SELECT count(*) AS count_1 FROM orders WHERE orders.customer_id = :customer_id) AS total "
    "FROM (SELECT orders.id AS id, orders.status AS status, orders.created_at AS created_at, "
    "orders.shipped_at AS shipped_at, orders.delivered_at AS delivered_at, "
    "orders.cancelled_at AS cancelled_at, orders.currency AS currency, "
    "orders.customer_id AS customer_id, "
    + "".join(f"orders.{c} AS {c}, " for c in _PICKED_EXTRA).removesuffix(", ")
    + " FROM orders WHERE orders.customer_id = :customer_id "
    "ORDER BY orders.created_at DESC, orders.id DESC LIMIT :limit OFFSET :offset) AS picked "
    "JOIN users ON users.id = picked.customer_id "
    "LEFT OUTER JOIN order_lines ON order_lines.order_id = picked.id "
    "ORDER BY picked.created_at DESC, picked.id DESC, order_lines.product_id"
)
ORDER_COUNT = text("SELECT count(*) AS count_1 FROM orders WHERE orders.customer_id = :customer_id")


def _in_list(count: int) -> str:
    return ", ".join(f":ids_{k}" for k in range(1, count + 1))


@functools.cache
def products_for_update(count: int) -> TextClause:
    return text(
        "SELECT products.id, products.name, products.price, products.quantity_in_stock, "
        "products.sku, products.unit, products.description, products.vat_rate, "
        "products.min_order_quantity, products.case_size FROM products "
        f"WHERE products.id IN ({_in_list(count)}) ORDER BY products.id FOR UPDATE"
    )


@functools.cache
def stock_update(count: int) -> TextClause:
    """Two products or more: one UPDATE for all (one product: ``ONE_STOCK``, at commit)."""
    whens = " ".join(f"WHEN (products.id = :id_{k}) THEN :stock_{k}" for k in range(count))
    return text(
        f"UPDATE products SET quantity_in_stock=CASE {whens} "
        f"ELSE products.quantity_in_stock END WHERE products.id IN ({_in_list(count)})"
    )


@functools.cache
def insert_lines(count: int) -> TextClause:
    if count == 1:
        values = "(" + ", ".join(f":{name}" for name in ("order_id", *LINE_COLUMNS)) + ")"
    else:
        values = ", ".join(
            "(" + ", ".join(f":{name}__{k}" for name in ("order_id", *LINE_COLUMNS)) + ")"
            for k in range(count)
        )
    return text(f"INSERT INTO order_lines (order_id, {', '.join(LINE_COLUMNS)}) VALUES {values}")


# --- wire format ------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, title: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title


class Caller(NamedTuple):
    user_id: int
    username: str
    is_staff: bool


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def product_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "sku": row.sku,
        "name": row.name,
        "description": row.description,
        "unit": row.unit,
        "price": money(row.price),
        "vat_rate": money(row.vat_rate),
        "quantity_in_stock": row.quantity_in_stock,
        "min_order_quantity": row.min_order_quantity,
        "case_size": row.case_size,
    }


def amounts(unit_price: Decimal, quantity: int, vat_rate: Decimal) -> tuple[Decimal, Decimal]:
    """A line's net and VAT (rounded to the cent, half up, as the domain does)."""
    net = (unit_price * quantity).quantize(CENT)
    return net, (net * vat_rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def line_json(line: Any) -> tuple[dict[str, Any], Decimal, Decimal]:
    """A line's JSON, its net and its VAT."""
    net, vat = amounts(line.unit_price, line.quantity, line.vat_rate)
    body = {
        "product_id": line.product_id,
        "sku": line.sku,
        "product_name": line.product_name,
        "unit": line.unit,
        "unit_price": money(line.unit_price),
        "vat_rate": money(line.vat_rate),
        "quantity": line.quantity,
        "line_net": money(net),
        "line_vat": money(vat),
        "line_total": money(net + vat),
    }
    return body, net, vat


def order_json(order: Any, lines: Sequence[Any]) -> dict[str, Any]:
    bodies, subtotal, vat_total = [], Decimal("0.00"), Decimal("0.00")
    for line in sorted(lines, key=lambda line: line.product_id):
        body, net, vat = line_json(line)
        bodies.append(body)
        subtotal += net
        vat_total += vat
    return {
        "id": order.id,
        "status": order.status,
        "created_at": moment(order.created_at),
        "shipped_at": moment(order.shipped_at),
        "delivered_at": moment(order.delivered_at),
        "cancelled_at": moment(order.cancelled_at),
        "currency": order.currency,
        "lines": bodies,
        "delivery_address": delivery_json(order),
        "invoice_number": getattr(order, "invoice_number", None),
        "subtotal": money(subtotal),
        "vat_total": money(vat_total),
        "total": money(subtotal + vat_total),
    }


def delivery_json(order: Any) -> dict[str, Any] | None:
    """The order's copy of its delivery address, or None (rows of the page carry it)."""
    values = {c.removeprefix("delivery_"): getattr(order, c, None) for c in DELIVERY_COLUMNS}
    return None if all(v is None for v in values.values()) else values


def page_json(items: list[dict[str, Any]], total: int, page: int, size: int) -> dict[str, Any]:
    """The service's envelope: count, links to the neighbouring pages, results."""
    last = max(1, -(-total // size))
    offset = (page - 1) * size
    base = f"{request.scheme}://{request.host}{request.path}?"
    has_next = page < last and offset + len(items) < total
    return {
        "count": total,
        "next": f"{base}page={page + 1}&page_size={size}" if has_next else None,
        "previous": f"{base}page={min(page - 1, last)}&page_size={size}" if page > 1 else None,
        "results": items,
    }


def page_arguments() -> tuple[int, int]:
    try:
        page = int(request.args.get("page", "1"))
        size = int(request.args.get("page_size", "20"))
    except ValueError as error:
        raise Refused(422, "page and page_size are whole numbers") from error
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise Refused(422, "page or page_size out of range")
    return page, size


def order_lines_requested() -> list[tuple[int, int]]:
    body = request.get_json(silent=True)
    lines = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        raise Refused(422, "lines: 1 to 100 lines")
    wanted: list[tuple[int, int]] = []
    for line in lines:
        if not isinstance(line, dict) or set(line) != {"product_id", "quantity"}:
            raise Refused(422, "a line is a product_id and a quantity")
        product_id, quantity = line["product_id"], line["quantity"]
        if type(product_id) is not int or type(quantity) is not int or quantity < 1:
            raise Refused(422, "product_id and quantity are positive whole numbers")
        wanted.append((product_id, quantity))
    if len({product_id for product_id, _ in wanted}) != len(wanted):
        raise Refused(422, "a product appears on two lines")
    return wanted


def fingerprint(wanted: list[tuple[int, int]]) -> str:
    return hashlib.sha256(json.dumps(sorted(wanted)).encode()).hexdigest()


# --- the app ----------------------------------------------------------------------------------


def create_app(
    database_url: str | None = None, secret_key: str | None = None, pool_size: int | None = None
) -> Flask:
    url = database_url or os.environ["DATABASE_URL"]
    secret = secret_key or os.environ["SECRET_KEY"]
    size = pool_size or int(os.environ.get("DB_POOL_SIZE") or 5)
    writes = create_engine(url, pool_size=size, max_overflow=size)
    reads = create_engine(url, pool_size=size, max_overflow=size, isolation_level="AUTOCOMMIT")
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the service's key order
    app.extensions["bare_engines"] = (writes, reads)

    def caller(conn: Connection) -> Caller:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refused(401, "not authenticated")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            raise Refused(401, "invalid token") from error
        login, version = claims["fam"], claims["ver"]
        if claims["type"] != "access" or not isinstance(login, str) or type(version) is not int:
            raise Refused(401, "invalid token")
        user_id = int(claims["sub"])
        row = conn.execute(USER_ACCESS, {"family_id": login, "id": user_id}).first()
        if row is None or not row.is_active or row.login_revoked:
            raise Refused(401, "this login has ended")
        if row.token_version != version:
            raise Refused(401, "the password has changed")
        return Caller(user_id=user_id, username=row.username, is_staff=row.is_staff)

    @app.errorhandler(Refused)
    def refused(error: Refused) -> tuple[dict[str, Any], int]:
        return {"title": error.title, "status": error.status}, error.status

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/products/")
    def product_page() -> dict[str, Any]:
        page, size = page_arguments()
        offset = (page - 1) * size
        with reads.connect() as conn:
            if offset:
                parameters = {"id_1": 1, "offset": offset, "limit": size}
                parameters.update(param_1=2, param_2=1, param_3=1, param_4=1)
                rows = conn.execute(CATALOGUE_DEEP_PAGE, parameters).all()
            else:
                rows = conn.execute(CATALOGUE_FIRST_PAGE, {"id_1": 1, "limit": size}).all()
            total = rows[0].total if rows else conn.execute(CATALOGUE_SIZE).scalar()
        return page_json([product_json(row) for row in rows], int(total or 0), page, size)

    @app.get("/api/v1/products/<int:product_id>/")
    def product(product_id: int) -> dict[str, Any]:
        with reads.connect() as conn:
            row = conn.execute(PRODUCT, {"id": product_id}).first()
        if row is None:
            raise Refused(404, "no such product")
        return product_json(row)

    @app.get("/api/v1/orders/")
    def order_page() -> dict[str, Any]:
        page, size = page_arguments()
        with reads.connect() as conn:
            who = caller(conn)
            parameters = {"customer_id": who.user_id, "offset": (page - 1) * size, "limit": size}
            rows = conn.execute(ORDER_PAGE, parameters).all()
            total = rows[0].total if rows else conn.execute(ORDER_COUNT, parameters).scalar_one()
        items: list[dict[str, Any]] = []
        start = 0
        for index, row in enumerate(rows):
            if index + 1 == len(rows) or rows[index + 1].id != row.id:
                lines = [r for r in rows[start : index + 1] if r.product_id is not None]
                items.append(order_json(row, lines))
                start = index + 1
        return page_json(items, int(total), page, size)

    @app.post("/api/v1/orders/")
    def place_order() -> tuple[dict[str, Any], int, dict[str, str]]:
        with reads.connect() as conn:
            who = caller(conn)
        wanted = order_lines_requested()
        key = request.headers.get("Idempotency-Key", "").strip() or None
        with writes.begin() as conn:
            body, replayed = take_and_record(conn, who.user_id, wanted, key)
        headers = {"Location": f"/api/v1/orders/{body['id']}/"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return body, 201, headers

    return app


def take_and_record(
    conn: Connection, customer_id: int, wanted: list[tuple[int, int]], key: str | None
) -> tuple[dict[str, Any], bool]:
    """In the caller's transaction: claim the key (or replay its answer), lock the products,
    take their stock, insert the order and its lines, keep the answer for the key, write the
    order's ``order.placed`` event (its payload: the order's JSON, as the answer)."""
    now = datetime.now(UTC)
    digest = fingerprint(wanted)
    at = {"customer_id": customer_id, "key": key, "fingerprint": "", "created_at": now}
    if key is not None and not conn.execute(CLAIM_KEY, at).rowcount:
        kept = conn.execute(KEPT_ANSWER, {"customer_id_1": customer_id, "key_1": key}).first()
        if kept is None:
            raise Refused(409, "a request with this key is in progress")
        if kept.fingerprint != digest:
            raise Refused(422, "this key was used for another order")
        return dict(kept.response), True
    address = conn.execute(DEFAULT_ADDRESS, {"customer_id_1": customer_id}).first()
    delivery = NO_DELIVERY
    if address is not None:
        delivery = {
            column: getattr(address, column.removeprefix("delivery_"))
            for column in DELIVERY_COLUMNS
        }
    ids = sorted(product_id for product_id, _ in wanted)
    named = {f"ids_{k}": product_id for k, product_id in enumerate(ids, start=1)}
    found = {row.id: row for row in conn.execute(products_for_update(len(ids)), named)}
    if len(found) != len(ids):
        raise Refused(422, "unknown products")
    if any(
        quantity < found[pid].min_order_quantity or quantity % found[pid].case_size
        for pid, quantity in wanted
    ):
        raise Refused(422, "below the minimum or not whole cases")
    left = {pid: found[pid].quantity_in_stock - quantity for pid, quantity in wanted}
    if any(count < 0 for count in left.values()):
        raise Refused(409, "out of stock")
    if len(ids) > 1:
        stock = {f"id_{k}": pid for k, pid in enumerate(ids)}
        stock.update({f"stock_{k}": left[pid] for k, pid in enumerate(ids)})
        conn.execute(stock_update(len(ids)), {**stock, **named})
    sums = [amounts(found[pid].price, quantity, found[pid].vat_rate) for pid, quantity in wanted]
    order = {"customer_id": customer_id, "status": "placed", "currency": CURRENCY, **delivery}
    order["subtotal"] = sum((net for net, _ in sums), Decimal("0.00"))
    order["vat_total"] = sum((vat for _, vat in sums), Decimal("0.00"))
    order_id = conn.execute(INSERT_ORDER, {**order, "created_at": now}).scalar_one()
    lines = [line_row(order_id, found[pid], quantity) for pid, quantity in wanted]
    conn.execute(insert_lines(len(lines)), numbered(lines))
    placed = OrderRow(order_id, "placed", now, None, None, None, CURRENCY)
    body = order_json(placed, [LineRow(**line) for line in lines])
    written = json.dumps(body)
    if key is not None:
        kept_at = {"b_customer_id": customer_id, "b_key": key, "b_order_id": order_id}
        answer = {"b_fingerprint": digest, "b_response": written}
        conn.execute(KEEP_ANSWER, {**kept_at, **answer})
    event = {"b_type": "order.placed", "b_order_id": order_id, "b_customer_id": customer_id}
    conn.execute(INSERT_EVENT, {**event, "b_occurred_at": now, "b_payload": written})
    if len(ids) == 1:
        conn.execute(ONE_STOCK, {"quantity_in_stock": left[ids[0]], "products_id": ids[0]})
    return body, False


class OrderRow(NamedTuple):
    id: int
    status: str
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    currency: str


class LineRow(NamedTuple):
    order_id: int
    product_id: int
    sku: str
    product_name: str
    unit: str
    unit_price: Decimal
    vat_rate: Decimal
    quantity: int


def line_row(order_id: int, product: Any, quantity: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "product_id": product.id,
        "sku": product.sku,
        "product_name": product.name,
        "unit": product.unit,
        "unit_price": product.price,
        "vat_rate": product.vat_rate,
        "quantity": quantity,
    }


def numbered(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The lines' values under the names of ``insert_lines`` (``sku__0``, ``sku__1``...)."""
    if len(lines) == 1:
        return lines[0]
    return {f"{name}__{k}": value for k, line in enumerate(lines) for name, value in line.items()}


def engines(app: Flask) -> tuple[Engine, Engine]:
    """The app's write and read engines (for the bench's statement trace)."""
    found: tuple[Engine, Engine] = app.extensions["bare_engines"]
    return found
