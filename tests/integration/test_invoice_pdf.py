"""The invoice PDF adapter on its own: real text in every alphabet, the same bytes every time,
long values wrapped rather than cut, many lines over several pages, a clear error without its
font. The text is read back with pypdf, as a search or a copy would."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest

from opply.adapters.invoice_pdf import BUNDLED_FONT, FpdfInvoiceRenderer, InvoiceFontMissing
from opply.application.dto import CustomerView, OrderView, order_line_view, order_view
from opply.application.ports import Seller
from opply.domain.model import DeliveryAddress, OrderStatus

SELLER = Seller(name="Kaffee & Co GmbH", address="Bahnhofstraße 2\n80335 München", vat_id="DE1")
NAMES = ("Crème fraîche", "Żurek", "Σκόρδο", "Квас", "Kaffee & Co")


def shipped(names: tuple[str, ...] = NAMES, *, address: bool = True) -> OrderView:
    lines = [
        order_line_view(
            product_id=n + 1,
            sku=f"SKU-{n + 1}",
            product_name=name,
            unit="bag",
            unit_price=Decimal("2.50"),
            vat_rate=Decimal("7.00"),
            quantity=n + 1,
        )
        for n, name in enumerate(names)
    ]
    return order_view(
        id=9,
        status=OrderStatus.SHIPPED,
        created_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
        shipped_at=datetime(2026, 12, 2, 9, tzinfo=UTC),
        delivered_at=None,
        cancelled_at=None,
        currency="EUR",
        lines=lines,
        delivery_address=DeliveryAddress(
            "Ζωή Παπαδοπούλου", "", "Οδός Ερμού 5", "", "105 63", "Αθήνα", "GR", "+30 21 0000"
        )
        if address
        else None,
        invoice_number="INV-2026-000009",
        customer=CustomerView(id=3, username="zoe"),
    )


def text_of(pdf: bytes) -> tuple[str, int]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


def test_every_alphabet_prints_as_real_text_with_the_sellers_details() -> None:
    pdf = FpdfInvoiceRenderer(SELLER).render(shipped())
    assert pdf.startswith(b"%PDF-")
    text, pages = text_of(pdf)
    assert pages == 1
    for expected in (
        *NAMES,
        "Kaffee & Co GmbH",
        "Bahnhofstraße 2",
        "80335 München",
        "VAT ID: DE1",
        "Ζωή Παπαδοπούλου",
        "105 63 Αθήνα",
        "INV-2026-000009",
        "2026-12-02",
        "Customer: zoe",
        "VAT 7.00% on 37.50 2.64",  # the sum of the lines' VAT, as the order's
        "Total 40.14 EUR",
    ):
        assert expected in text, expected


def test_the_same_order_gives_the_same_bytes() -> None:
    first = FpdfInvoiceRenderer(SELLER).render(shipped())
    again = FpdfInvoiceRenderer(SELLER).render(shipped())
    assert first == again
    other = FpdfInvoiceRenderer(SELLER).render(shipped(("Crème fraîche", "Żurek 2")))
    assert other != first


def test_a_long_name_wraps_whole_and_many_lines_take_several_pages() -> None:
    long_name = "Hafer " + "Żurek " * 30 + "Ende"
    names = (long_name, *(f"Квас {n}" for n in range(99)))
    text, pages = text_of(FpdfInvoiceRenderer(SELLER).render(shipped(names, address=False)))
    assert pages >= 3
    assert "Ende" in text  # wrapped, not cut
    assert "Квас 98" in text
    assert "No delivery address" in text
    assert text.count("SKU Product Unit") == pages  # the heading again on every page


def test_a_missing_font_is_a_clear_error(tmp_path: Path) -> None:
    renderer = FpdfInvoiceRenderer(SELLER, font_path=tmp_path / "missing.ttf")
    with pytest.raises(InvoiceFontMissing, match=r"missing\.ttf"):
        renderer.render(shipped())


def test_the_package_ships_its_font_with_the_licence() -> None:
    assert BUNDLED_FONT.is_file()
    licence = (BUNDLED_FONT.parent / "DejaVuSans-LICENSE.txt").read_text()
    assert "Bitstream" in licence


def test_one_renderer_writes_invoices_of_different_letters_one_after_another() -> None:
    """Writing a PDF subsets its font's data in place: each invoice must start from the whole
    font, or the second one misses the letters the first did not use."""
    renderer = FpdfInvoiceRenderer(SELLER)
    for names in (("Oat",), ("Квас", "Σκόρδο"), ("Żurek 42", "Crème fraîche"), ("Oat",)):
        text, _ = text_of(renderer.render(shipped(names)))
        for name in names:
            assert name in text
    assert renderer.render(shipped()) == FpdfInvoiceRenderer(SELLER).render(shipped())
