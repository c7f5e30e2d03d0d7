"""pgbench scripts of each scenario's SQL: the ceiling the database sets on its rate.

A script is written from the bare app's statements, which are the service's word for word
(`make bench` checks that per request), so the ceiling runs exactly the SQL a request sends, in
its order and its transaction, with one difference pgbench forces: the new stock counts, which
the app computes from the rows it locked, are computed by the UPDATE itself.

Variables the run passes with ``-D``: ``first_id`` and ``count`` (the products), ``offset``
(a list page), ``customers_from`` and ``customers_to`` (the ids of the customers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from sqlalchemy import TextClause

import bare_app

_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)")
CUSTOMER = "\\set customer random(:customers_from, :customers_to)"
LOGIN = "'bench-login'"  # the access token's login: any family that was never revoked
# A kept answer of the size of a two-line order's (the service stores the JSON it sent); the
# order's event carries the same as its payload.
KEPT_ANSWER = (
    '{"id": 1, "status": "placed", "created_at": "2026-11-25T05:55:34.970477Z", '
    '"shipped_at": null, "delivered_at": null, "cancelled_at": null, "currency": "EUR", '
    '"lines": [{"product_id": 3, "sku": "P-000003", "product_name": "Product 3", '
    '"unit": "box", "unit_price": "4.50", "vat_rate": "0.00", "quantity": 1, '
    '"line_net": "4.50", "line_vat": "0.00", "line_total": "4.50"}, {"product_id": 503, '
    '"sku": "P-000503", "product_name": "Product 503", "unit": "box", "unit_price": "19.50", '
    '"vat_rate": "19.00", "quantity": 1, "line_net": "19.50", "line_vat": "3.71", '
    '"line_total": "23.21"}], "subtotal": "24.00", "vat_total": "3.71", "total": "27.71"}'
)


def sql(statement: TextClause, values: Mapping[str, str]) -> str:
    """``statement`` with each bound parameter replaced by ``values[name]`` (SQL text: a
    pgbench variable such as ``:customer``, or a literal), as one pgbench command."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PARAMETER.sub(value, statement.text).replace("\\:", ":") + ";"


def user_check() -> str:
    return sql(bare_app.USER_ACCESS, {"family_id": LOGIN, "id": ":customer"})


def list_page(offset: int) -> str:
    """Page 1 (no offset) or a deeper page of the catalogue; -D offset=... for a deep one."""
    if not offset:
        return sql(bare_app.CATALOGUE_FIRST_PAGE, {"id_1": "1", "limit": "20"})
    values = {"id_1": "1", "offset": ":offset", "limit": "20", "param_1": "2"}
    values.update(param_2="1", param_3="1", param_4="1")
    return sql(bare_app.CATALOGUE_DEEP_PAGE, values)


def product_detail() -> str:
    return "\n".join(
        [
            "\\set product random(:first_id, :first_id + :count - 1)",
            sql(bare_app.PRODUCT, {"id": ":product"}),
        ]
    )


def history_page() -> str:
    values = {"customer_id": ":customer", "limit": "20", "offset": "0"}
    return "\n".join([CUSTOMER, user_check(), sql(bare_app.ORDER_PAGE, values)])


def place_order(lines: int, *, events: bool = True) -> str:
    """A keyed order of ``lines`` distinct products, spread over the catalogue as wrk.lua
    spreads them: the user check, then one transaction; with its ``order.placed`` event unless
    ``events`` is false (the same order as before issue 18, for the cost of the event)."""
    step = f"(:count / {lines})"
    ids = {f"ids_{k + 1}": f":p{k}" for k in range(lines)}
    now = "now()"
    key = "'pgbench-' || :client_id || '-' || :nonce"
    claim = {"customer_id": ":customer", "key": key, "fingerprint": "''", "created_at": now}
    order = {"customer_id": ":customer", "status": "'placed'", "currency": "'EUR'"}
    order.update(dict.fromkeys(bare_app.DELIVERY_COLUMNS, "NULL"))
    # The lines' net and VAT as the service stores them: ``lines`` lines of 1 x 10.50 at 7%.
    order.update(subtotal=f"{Decimal('10.50') * lines}", vat_total=f"{Decimal('0.74') * lines}")
    line = {
        "order_id": ":order_id",
        "sku": "'P-000001'",
        "product_name": "'Product 1'",
        "unit": "'unit'",
        "unit_price": "10.50",
        "vat_rate": "7.00",
        "quantity": "1",
    }
    if lines == 1:
        line_values = {**line, "product_id": ":p0"}
    else:
        line_values = {
            f"{name}__{k}": value
            for k in range(lines)
            for name, value in {**line, "product_id": f":p{k}"}.items()
        }
    taken = "products.quantity_in_stock - 1"
    stock = {f"id_{k}": f":p{k}" for k in range(lines)}
    stock.update({f"stock_{k}": taken for k in range(lines)})
    keep = {
        "b_fingerprint": "'" + "0" * 64 + "'",
        "b_order_id": ":order_id",
        "b_response": "'" + KEPT_ANSWER + "'",
        "b_customer_id": ":customer",
        "b_key": key,
    }
    script = [
        f"\\set p0 :first_id + random(0, {step} - 1)",
        *(f"\\set p{k} :p0 + {k} * {step}" for k in range(1, lines)),
        CUSTOMER,
        "\\set nonce random(1, 2000000000)",
        user_check(),
        "BEGIN;",
        sql(bare_app.CLAIM_KEY, claim),
        sql(bare_app.DEFAULT_ADDRESS, {"customer_id_1": ":customer"}),
        sql(bare_app.products_for_update(lines), ids),
    ]
    if lines > 1:
        script.append(sql(bare_app.stock_update(lines), {**stock, **ids}))
    script += [
        sql(bare_app.INSERT_ORDER, {**order, "created_at": now}).removesuffix(";")
        + " \\gset order_",
        sql(bare_app.insert_lines(lines), line_values),
        sql(bare_app.KEEP_ANSWER, keep),
    ]
    if events:
        event = {"b_type": "'order.placed'", "b_order_id": ":order_id", "b_occurred_at": now}
        event.update(b_customer_id=":customer", b_payload="'" + KEPT_ANSWER + "'")
        script.append(sql(bare_app.INSERT_EVENT, event))
    if lines == 1:
        script.append(sql(bare_app.ONE_STOCK, {"quantity_in_stock": taken, "products_id": ":p0"}))
    script.append("COMMIT;")
    return "\n".join(script)


def write(name: str, script: str, workdir: Path) -> Path:
    path = workdir / f"{name}.sql"
    path.write_text(f"-- {name}: written by bench/ceilings.py\n{script}\n")
    return path
