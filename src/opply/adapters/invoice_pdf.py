"""Invoices as PDF, with fpdf2 (pure Python) and an embedded Unicode font (DejaVu Sans).

The text is real text in an embedded subset of the font, so every name the API accepts (Latin,
Greek, Cyrillic...) prints, can be searched and copied. The file is a pure function of the order
view and the seller: its creation date is the shipping date, so the same invoice is the same
bytes (and the same ``ETag``) on every request.

The font ships with the package (``adapters/fonts``, its licence beside it): no system package is
needed on a new machine, in CI or in the image. ``INVOICE_FONT`` may name another TTF file.
Parsing a TrueType font costs about twice the rest of an invoice, so it is parsed once per
process (see ``_document``); what is left is mostly fontTools subsetting the font per document.
"""

from __future__ import annotations

import copy
import functools
import io
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

from opply.application.dto import OrderView
from opply.application.ports import Seller
from opply.domain.model import ZERO, Amounts

FONT = "InvoiceSans"
RECENT_INVOICES = 256
BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"


# Tables no invoice uses: fpdf2 places glyphs itself (no layout tables, no kerning), and drops
# the layout tables from every subset it writes; but the subsetter reads them all first, which
# cost a third of an invoice.
UNUSED_TABLES = ("GDEF", "GPOS", "GSUB", "kern")


def _lean_font(path: Path) -> tuple[bytes, list[str]]:
    """The font file without the tables no invoice uses and without its glyph names (decoding
    6,000 names cost another sixth), and those names in glyph order, which fpdf2 knows the
    glyphs by: each document's copy is told them instead of decoding them."""
    font = ttLib.TTFont(path, recalcTimestamp=False)
    try:
        glyph_order = list(font.getGlyphOrder())
        for tag in UNUSED_TABLES:
            if tag in font:
                del font[tag]
        font["post"].formatType = 3.0
        out = io.BytesIO()
        font.save(out)
    finally:
        font.close()
    return out.getvalue(), glyph_order


class InvoiceFontMissing(RuntimeError):
    """The TrueType font invoices are written in cannot be read."""


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


class FpdfInvoiceRenderer:
    media_type = "application/pdf"

    def __init__(self, seller: Seller, font_path: str | Path | None = None) -> None:
        self._seller = seller
        self._font_path = Path(font_path) if font_path else BUNDLED_FONT
        self._font: TTFFont | None = None
        self._font_bytes = b""
        self._glyph_order: list[str] = []
        self._lock = threading.Lock()
        # An invoice is a pure function of its order's view (a hashable value), and each
        # conditional GET needs its bytes for the ETag: the last few are kept (~20 KB each).
        self.render = functools.lru_cache(maxsize=RECENT_INVOICES)(self._render)  # type: ignore[method-assign]

    def _document(self) -> FPDF:
        """A new document with the font: parsed once (about twice the cost of the rest of an
        invoice), then given to each document as a copy sharing what fpdf2 only reads after
        parsing (the glyphs' widths and ids, the character map), with its own record of the
        glyphs used, and its own TrueType data: writing a document subsets that data in place.
        The data is opened lazily from the font's bytes, read once (nothing is parsed until the
        subsetting reads it). ``tests/integration/test_invoice_pdf.py`` renders invoices of
        different letters in turn with one renderer, and fails if this stops holding."""
        with self._lock:
            if self._font is None:
                if not self._font_path.is_file():
                    raise InvoiceFontMissing(
                        f"The invoice font {self._font_path} is missing: reinstall the package "
                        "(it ships DejaVuSans.ttf) or point INVOICE_FONT at a TrueType font"
                    )
                parsed = FPDF()
                parsed.add_font(FONT, "", str(self._font_path))
                font = parsed.fonts[FONT.lower()]
                assert isinstance(font, TTFFont)
                font.ttfont.close()  # read what it needed; each document opens its own
                self._font_bytes, self._glyph_order = _lean_font(self._font_path)
                self._font = font
        document = FPDF(format="A4")
        font = copy.copy(self._font)
        font.ttfont = ttLib.TTFont(
            io.BytesIO(self._font_bytes), recalcTimestamp=False, fontNumber=0, lazy=True
        )
        font.ttfont.setGlyphOrder(self._glyph_order)
        font.subset = SubsetMap(font)
        font.missing_glyphs = []
        document.fonts[font.fontkey] = font
        return document

    def render(self, order: OrderView) -> bytes:
        """The invoice of a shipped order (replaced per instance by a cached ``_render``)."""
        return self._render(order)

    def _render(self, order: OrderView) -> bytes:
        assert order.invoice_number is not None
        assert order.shipped_at is not None
        pdf = self._document()
        pdf.set_creation_date(order.shipped_at)
        pdf.set_producer("Opply")
        pdf.set_title(f"Invoice {order.invoice_number}")
        pdf.set_author(self._seller.name)
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.add_page()
        width = pdf.epw

        pdf.set_font(FONT, size=18)
        pdf.cell(width, 10, "Invoice", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, size=9)
        facts = [
            ("Invoice number", order.invoice_number),
            ("Invoice date", order.shipped_at.date().isoformat()),
            ("Order", f"#{order.id}, placed {order.created_at.date().isoformat()}"),
        ]
        for label, value in facts:
            pdf.cell(35, 5, label)
            pdf.cell(width - 35, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)

        top = pdf.get_y()
        column = (width - 10) / 2
        seller_lines = [
            self._seller.name,
            *self._seller.address.splitlines(),
            f"VAT ID: {self._seller.vat_id}",
        ]
        self._block(pdf, "Seller", seller_lines, pdf.l_margin, top, column)
        seller_bottom = pdf.get_y()
        buyer = [f"Customer: {order.customer.username}" if order.customer else "Customer"]
        address = order.delivery_address
        if address is not None:
            buyer += [
                line
                for line in (
                    address.recipient,
                    address.company,
                    address.line1,
                    address.line2,
                    f"{address.postal_code} {address.city}",
                    address.country,
                    address.phone,
                )
                if line
            ]
        else:
            buyer.append("No delivery address")
        self._block(pdf, "Bill and deliver to", buyer, pdf.l_margin + column + 10, top, column)
        pdf.set_y(max(seller_bottom, pdf.get_y()) + 6)

        self._lines(pdf, order)
        pdf.ln(4)

        by_rate: dict[Decimal, Amounts] = defaultdict(lambda: Amounts(net=ZERO, vat=ZERO))
        for line in order.lines:
            by_rate[line.vat_rate] += Amounts(net=line.line_net, vat=line.line_vat)
        pdf.set_font(FONT, size=9)
        label_width, amount_width = 60, 30
        left = pdf.l_margin + width - label_width - amount_width

        def total_row(label: str, value: str, size: int = 9) -> None:
            pdf.set_font(FONT, size=size)
            pdf.set_x(left)
            pdf.cell(label_width, 6, label)
            pdf.cell(amount_width, 6, value, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        for rate, amounts in sorted(by_rate.items()):
            total_row(f"VAT {rate}% on {_money(amounts.net)}", _money(amounts.vat))
        total_row("Subtotal (net)", f"{_money(order.subtotal)} {order.currency}")
        total_row("VAT total", f"{_money(order.vat_total)} {order.currency}")
        total_row("Total", f"{_money(order.total)} {order.currency}", size=11)
        return bytes(pdf.output())

    @staticmethod
    def _lines(pdf: FPDF, order: OrderView) -> None:
        """The lines' table. A cell whose text fits is placed as text (a table, or a cell per
        value, lays every value out as a line of text to break, and cost four times the rest of
        the invoice); only a value too long for its column is wrapped, and makes its row taller."""
        shares = (22, 52, 14, 11, 19, 12, 20, 18, 20)
        widths = tuple(share * pdf.epw / sum(shares) for share in shares)
        right = (False, False, False, True, True, True, True, True, True)
        height, pad = 4.5, 1.0

        def row(cells: tuple[str, ...], fill: bool = False) -> None:
            sizes = [pdf.get_string_width(text) for text in cells]
            wrapped: dict[int, int] = {}
            for index, (text, size, width) in enumerate(zip(cells, sizes, widths, strict=True)):
                if size > width - 2 * pad:
                    lines = pdf.multi_cell(
                        width, height, text, dry_run=True, output=MethodReturnValue.LINES
                    )
                    assert isinstance(lines, list)
                    wrapped[index] = len(lines)
            row_height = height * max([1, *wrapped.values()])
            if pdf.get_y() + row_height > pdf.page_break_trigger:
                pdf.add_page()
                heading()
            x, y = pdf.l_margin, pdf.get_y()
            if fill:
                pdf.rect(x, y, pdf.epw, row_height, style="F")
            baseline = y + height / 2 + pdf.font_size * 0.35
            for index, (text, size, width) in enumerate(zip(cells, sizes, widths, strict=True)):
                if index in wrapped:
                    pdf.set_xy(x, y)
                    align = Align.R if right[index] else Align.L
                    pdf.multi_cell(width, height, text, align=align)
                else:
                    pdf.text(x + width - pad - size if right[index] else x + pad, baseline, text)
                x += width
            pdf.set_xy(pdf.l_margin, y + row_height)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())

        def heading() -> None:
            row(
                ("SKU", "Product", "Unit", "Qty", "Unit price", "VAT %", "Net", "VAT", "Total"),
                fill=True,
            )

        pdf.set_font(FONT, size=8)
        pdf.set_fill_color(230, 230, 230)
        pdf.set_draw_color(200, 200, 200)
        heading()
        for line in order.lines:
            row(
                (
                    line.sku,
                    line.product_name,
                    line.unit,
                    str(line.quantity),
                    _money(line.unit_price),
                    str(line.vat_rate),
                    _money(line.line_net),
                    _money(line.line_vat),
                    _money(line.line_total),
                )
            )

    @staticmethod
    def _block(pdf: FPDF, title: str, lines: list[str], x: float, y: float, w: float) -> None:
        pdf.set_xy(x, y)
        pdf.set_font(FONT, size=8)
        pdf.set_text_color(110, 110, 110)
        pdf.cell(w, 5, title.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font(FONT, size=10)
        for line in lines:
            pdf.multi_cell(w, 5, line, new_x=XPos.LEFT, new_y=YPos.NEXT)
