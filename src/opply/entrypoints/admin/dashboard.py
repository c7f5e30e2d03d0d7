"""The admin's home page (the dashboard) and the orders exported as CSV for the accountant."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Generator, Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dependency_injector.wiring import Provide
from flask import Response, abort, current_app, render_template, request

from opply.application.dashboard import ExportOrders, ExportQuery, ShowDashboard
from opply.application.dto import ExportLine
from opply.domain.model import OrderStatus
from opply.entrypoints.admin.chart import sales_chart
from opply.entrypoints.admin.site import bp
from opply.entrypoints.container import Container

show_dashboard: ShowDashboard = Provide[Container.show_dashboard]
export_orders: ExportOrders = Provide[Container.export_orders]

STATUSES = {s.value: s for s in OrderStatus}
DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ROWS_PER_CHUNK = 500  # CSV rows sent to the client at a time


@bp.app_template_filter("age")
def age(since: datetime, now: datetime) -> str:
    """How long ago, roughly: "5 min", "3 h", "2 days"."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


@bp.route("/")
def index() -> Any:
    dashboard = show_dashboard()
    return render_template(
        "admin/index.html",
        dashboard=dashboard,
        chart=sales_chart(dashboard.sales, current_app.config["OPPLY_SETTINGS"].currency),
    )


# --- orders as CSV ------------------------------------------------------------------------------

# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: str) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a quote before it."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_columns(zone: ZoneInfo) -> tuple[tuple[str, Callable[[ExportLine], object]], ...]:
    """The file's columns, in order: a header and how each line fills it."""
    return (
        ("order_id", lambda line: line.order_id),
        ("placed_at", lambda line: line.created_at.astimezone(zone).isoformat()),
        ("status", lambda line: line.status.value),
        ("customer", lambda line: neutralised(line.customer)),
        ("invoice_number", lambda line: neutralised(line.invoice_number or "")),
        ("sku", lambda line: neutralised(line.sku)),
        ("product", lambda line: neutralised(line.product_name)),
        ("quantity", lambda line: line.quantity),
        ("unit_price", lambda line: line.unit_price),
        ("vat_rate", lambda line: line.vat_rate),
        ("net", lambda line: line.line_net),
        ("vat", lambda line: line.line_vat),
        ("total", lambda line: line.line_total),
        ("currency", lambda line: line.currency),
    )


def csv_chunks(lines: Generator[ExportLine, None, None], zone: ZoneInfo) -> Iterator[bytes]:
    """The CSV file, UTF-8, a header row first, ``ROWS_PER_CHUNK`` rows at a time. Closing
    it (the client went away) closes ``lines``, which gives the database connection back."""
    columns = csv_columns(zone)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header for header, _ in columns)
    try:
        for count, line in enumerate(lines, 1):
            writer.writerow(cell(line) for _, cell in columns)
            if count % ROWS_PER_CHUNK == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()
    finally:
        lines.close()


def _day(name: str) -> date:
    raw = request.args.get(name, "").strip()
    if not raw:
        abort(422, description=f"{name}: give a day as YYYY-MM-DD.")
    if not DAY_RE.fullmatch(raw):
        abort(422, description=f"{name}: {raw[:40]!r} is not a day written YYYY-MM-DD.")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(422, description=f"{name}: {raw!r} is not a day of the calendar.")


def _status() -> OrderStatus | None:
    raw = request.args.get("status", "").strip()
    if raw and raw not in STATUSES:
        abort(422, description=f"status: must be one of {', '.join(STATUSES)}, or none for all.")
    return STATUSES[raw] if raw else None


@bp.route("/orders.csv")
def orders_csv() -> Any:
    query = ExportQuery(first_day=_day("from"), last_day=_day("to"), status=_status())
    lines = export_orders(query)  # refuses a bad range here, before the answer starts
    zone = ZoneInfo(current_app.config["OPPLY_SETTINGS"].shop_timezone)
    name = f"orders-{query.first_day}-to-{query.last_day}"
    if query.status is not None:
        name += f"-{query.status.value}"
    return Response(
        csv_chunks(lines, zone),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
