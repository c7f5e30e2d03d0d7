"""The dashboard's sales chart, drawn on the server: the geometry of an SVG bar chart of each
day's total (VAT included), which ``admin/_sales_chart.html`` writes out as plain SVG.

No script and no stylesheet inside the SVG: colours come from ``admin.css`` by class, so the
admin's Content-Security-Policy (``style-src 'self'``, no inline styles) holds, and the page
works offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from opply.application.dto import DaySales

WIDTH = 720
HEIGHT = 240
LEFT = 64  # room for the amounts on the left
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the days below
GRIDLINES = 4
LABEL_EVERY = 5  # days between two labels under the bars


@dataclass(frozen=True, kw_only=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the day's figures, shown on hover and read by screen readers


@dataclass(frozen=True, kw_only=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, kw_only=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    bars: Sequence[Bar]
    amounts: Sequence[Tick]  # gridlines: y and the amount
    days: Sequence[Tick]  # labels under the bars: x and the day


def nice_step(largest: Decimal, parts: int = GRIDLINES) -> Decimal:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that splits ``largest`` into at most
    ``parts`` parts (so the gridlines fall on round amounts)."""
    if largest <= 0:
        return Decimal(1)
    rough = largest / parts
    power = Decimal(10) ** (rough.adjusted())
    for factor in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        if power * factor >= rough:
            return power * factor
    return power * 10  # pragma: no cover - the loop ends at 10, which always fits


def sales_chart(days: Sequence[DaySales], currency: str) -> Chart:
    step = nice_step(max((day.total for day in days), default=Decimal(0)))
    top_amount = step * GRIDLINES
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = float(day.total / top_amount) * plot_height
        bars.append(
            Bar(
                x=round(LEFT + index * slot + slot * 0.15, 2),
                y=round(TOP + plot_height - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                title=(
                    f"{day.day.isoformat()}: {day.orders} order{'' if day.orders == 1 else 's'}, "
                    f"{day.total} {currency}"
                ),
            )
        )
    amounts = [
        Tick(
            position=round(TOP + plot_height - plot_height * n / GRIDLINES, 2),
            label=f"{step * n:,.0f}" if step >= 1 else f"{step * n:,.2f}",
        )
        for n in range(GRIDLINES + 1)
    ]
    labelled = [i for i in range(len(days)) if (len(days) - 1 - i) % LABEL_EVERY == 0]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=TOP + plot_height,
        bars=bars,
        amounts=amounts,
        days=[
            Tick(position=round(LEFT + i * slot + slot / 2, 2), label=days[i].day.strftime("%d %b"))
            for i in labelled
        ],
    )
