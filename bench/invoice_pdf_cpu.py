"""CPU time to render one invoice PDF of a 20-line order (issue 19's goal: under 30 ms).

No database and no HTTP: the renderer the service uses (``FpdfInvoiceRenderer``, with the font
the package ships) on an order view of 20 lines whose names use Latin, Polish, Greek and
Cyrillic letters, after one warm-up render (which parses the font once per process). Prints the
least and the median of ``ROUNDS`` rounds of ``RENDERS`` renders of new invoices each, the file's
size, and the cost of asking again for an invoice the renderer kept.

Run with `.venv/bin/python bench/invoice_pdf_cpu.py` (INVOICE_RENDERS, INVOICE_ROUNDS).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal

from opply.adapters.invoice_pdf import FpdfInvoiceRenderer
from opply.application.dto import CustomerView, OrderView, order_line_view, order_view
from opply.application.ports import Seller
from opply.domain.model import DeliveryAddress, OrderStatus

RENDERS = int(os.environ.get("INVOICE_RENDERS", "50"))
ROUNDS = int(os.environ.get("INVOICE_ROUNDS", "5"))
NAMES = ("Crème fraîche 1kg", "Żurek 5L", "Σκόρδο 10kg", "Квас 12x0.5L", "Kaffee & Co Espresso")


def twenty_lines(number: int = 42) -> OrderView:
    lines = [
        order_line_view(
            product_id=n + 1,
            sku=f"SKU-{n + 1:04d}",
            product_name=f"{NAMES[n % len(NAMES)]} (batch {n + 1})",
            unit="case of 12" if n % 3 == 0 else "bag",
            unit_price=Decimal("12.50") + n,
            vat_rate=Decimal("7.00") if n % 2 else Decimal("19.00"),
            quantity=n + 1,
        )
        for n in range(20)
    ]
    return order_view(
        id=4242,
        status=OrderStatus.SHIPPED,
        created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        shipped_at=datetime(2026, 12, 2, 10, 15, tzinfo=UTC),
        delivered_at=None,
        cancelled_at=None,
        currency="EUR",
        lines=lines,
        delivery_address=DeliveryAddress(
            "Jane Baker", "Kaffee & Co", "12 Mill Lane", "", "EC1A 1BB", "London", "GB", ""
        ),
        invoice_number=f"INV-2026-{number:06d}",
        customer=CustomerView(id=7, username="jane"),
    )


def main() -> None:
    renderer = FpdfInvoiceRenderer(
        Seller(name="Opply GmbH", address="Musterstraße 1\n10115 Berlin", vat_id="DE123456789")
    )
    size = len(renderer.render(twenty_lines(0)))  # warm-up: the font is parsed once per process
    rounds = []
    for round_ in range(ROUNDS):
        # A new invoice each time: the renderer keeps the last ones it wrote.
        orders = [twenty_lines(round_ * RENDERS + n + 1) for n in range(RENDERS)]
        started = time.process_time()
        for order in orders:
            renderer.render(order)
        rounds.append((time.process_time() - started) / RENDERS * 1000)
    started = time.process_time()
    for order in orders:
        renderer.render(order)
    again = (time.process_time() - started) / RENDERS * 1000
    print(
        f"invoice PDF, 20 lines: {min(rounds):.1f} ms CPU (least of {ROUNDS} rounds of "
        f"{RENDERS}), median {statistics.median(rounds):.1f} ms; {size:,} bytes; "
        f"the same invoice again (kept): {again:.3f} ms"
    )


if __name__ == "__main__":
    main()
