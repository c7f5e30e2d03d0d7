"""The staff's day at a glance (the admin's dashboard) and the orders exported for the
accountant.

Days are the shop's days: local days in its time zone (``SHOP_TIMEZONE``), whose UTC bounds are
worked out here with ``zoneinfo`` (a day of a clock change is 23 or 25 hours long), so that the
reads only ever compare stored UTC instants with bound UTC instants.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from opply.application.dto import Dashboard, DaySales, ExportFilter, ExportLine
from opply.application.ports import Clock
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import InvalidDateRange
from opply.domain.model import OrderStatus

TO_SHIP_SHOWN = 50
RUNNING_LOW_SHOWN = 50
INTEGRATIONS_SHOWN = 20
SALES_DAYS = 30
MAX_EXPORT_DAYS = 366  # a year, leap or not: the accountant's longest period
EXPORT_CHUNK = 1000  # rows fetched from the store at a time


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the local ``day`` starts in ``zone``.

    A local midnight that a clock change skips is read with the offset before the change
    (PEP 495's ``fold=0``), which lands on the instant of the change: when that day really
    starts."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_starts(first: date, days: int, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which each of ``days`` local days from ``first`` on starts, and the
    instant the last one ends: ``days + 1`` ascending bounds."""
    return [start_of_day(first + timedelta(days=n), zone) for n in range(days + 1)]


class ShowDashboard:
    """What must ship, what is running low, the sales of the last 30 days and the webhook
    endpoints in trouble, one read each."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, time_zone: str, low_stock_threshold: int
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._zone = ZoneInfo(time_zone)
        self._threshold = low_stock_threshold

    def __call__(self) -> Dashboard:
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        first = today - timedelta(days=SALES_DAYS - 1)
        bounds = day_starts(first, SALES_DAYS, self._zone)
        with self._uow.read() as reads:
            to_ship = reads.orders_to_ship(limit=TO_SHIP_SHOWN)
            running_low = reads.products_running_low(
                threshold=self._threshold, limit=RUNNING_LOW_SHOWN
            )
            sales = reads.sales(bounds)
            integrations = reads.webhook_endpoints_in_trouble(limit=INTEGRATIONS_SHOWN)
        return Dashboard(
            to_ship=to_ship,
            running_low=running_low,
            low_stock_threshold=self._threshold,
            sales=[
                DaySales(
                    day=first + timedelta(days=n),
                    orders=day.orders,
                    net=day.net,
                    vat=day.vat,
                    total=day.total,
                )
                for n, day in enumerate(sales)
            ],
            integrations=integrations,
            time_zone=self._zone.key,
            as_of=now,
        )


@dataclass(frozen=True, kw_only=True)
class ExportQuery:
    """The orders placed from ``first_day`` to ``last_day`` (both included, the shop's days),
    of ``status`` if given."""

    first_day: date
    last_day: date
    status: OrderStatus | None = None


class ExportOrders:
    """The lines of the orders placed in a range of days, oldest first, as a stream."""

    def __init__(self, uow: UnitOfWork, clock: Clock, time_zone: str) -> None:
        self._uow = uow
        self._clock = clock
        self._zone = ZoneInfo(time_zone)

    def this_month(self) -> ExportQuery:
        """From the first of the shop's current month to today: what an export offers first."""
        today = self._clock.now().astimezone(self._zone).date()
        return ExportQuery(first_day=today.replace(day=1), last_day=today)

    def __call__(self, query: ExportQuery) -> Generator[ExportLine, None, None]:
        """Checks the range at once (a refusal comes before any row), then returns the rows
        as a generator that holds its read unit of work (one connection) until it is
        exhausted or closed."""
        if query.first_day > query.last_day:
            raise InvalidDateRange(
                f"The first day ({query.first_day}) is after the last ({query.last_day})"
            )
        days = (query.last_day - query.first_day).days + 1
        if days > MAX_EXPORT_DAYS:
            raise InvalidDateRange(
                f"At most {MAX_EXPORT_DAYS} days can be exported at once, not {days}"
            )
        start = start_of_day(query.first_day, self._zone)
        end = start_of_day(query.last_day + timedelta(days=1), self._zone)
        return self._lines(ExportFilter(start=start, end=end, status=query.status))

    def _lines(self, flt: ExportFilter) -> Generator[ExportLine, None, None]:
        with self._uow.read() as reads:
            yield from reads.order_lines_export(flt, chunk=EXPORT_CHUNK)
