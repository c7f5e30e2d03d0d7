"""A small demo catalogue and two demo accounts, loaded idempotently by ``opply demo load``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from opply.application.dto import NewProduct, NewUser, PageRequest, ProductFilter
from opply.domain.errors import UserNotFound
from opply.entrypoints.container import Container

DEMO_CUSTOMER = ("demo", "demo-pass-2026")
DEMO_STAFF = ("staff", "staff-pass-2026")

CATALOGUE: list[tuple[str, str, int]] = [
    ("Oat flour 25kg", "12.50", 40),
    ("Rolled oats 10kg", "9.80", 60),
    ("Spelt flour 25kg", "18.90", 25),
    ("Rye flour 25kg", "14.20", 30),
    ("Buckwheat groats 5kg", "11.40", 35),
    ("Chickpea flour 10kg", "16.75", 20),
    ("Almond flour 5kg", "42.00", 12),
    ("Coconut sugar 5kg", "24.60", 18),
    ("Cane sugar 25kg", "21.30", 50),
    ("Maple syrup 5L", "58.00", 10),
    ("Agave syrup 5L", "31.50", 14),
    ("Cocoa powder 5kg", "37.90", 16),
    ("Dark chocolate drops 5kg", "49.50", 22),
    ("Vanilla extract 1L", "64.00", 8),
    ("Sunflower oil 10L", "23.10", 40),
    ("Rapeseed oil 10L", "19.80", 45),
    ("Extra virgin olive oil 5L", "44.90", 15),
    ("Sea salt 5kg", "6.40", 80),
    ("Baking powder 1kg", "7.20", 55),
    ("Dried yeast 500g", "8.90", 40),
    ("Pea protein 5kg", "39.00", 20),
    ("Hemp seeds 5kg", "34.50", 12),
    ("Chia seeds 5kg", "27.80", 18),
    ("Pumpkin seeds 5kg", "29.40", 16),
    ("Sunflower seeds 10kg", "22.00", 25),
    ("Dried cranberries 5kg", "33.60", 14),
    ("Raisins 10kg", "28.20", 20),
    ("Dates, pitted 5kg", "26.90", 22),
    ("Oat milk barista 12x1L", "21.60", 30),
    ("Apple juice concentrate 5L", "17.50", 0),
]


def load_demo(container: Container) -> Iterator[str]:
    everything = PageRequest(page=1, page_size=len(CATALOGUE) + 10_000)
    existing = {p.name for p in container.list_products()(ProductFilter(), everything).items}
    added = 0
    for name, price, stock in CATALOGUE:
        if name not in existing:
            container.create_product()(
                NewProduct(name=name, price=Decimal(price), quantity_in_stock=stock)
            )
            added += 1
    yield f"demo catalogue: {added} products added, {len(CATALOGUE) - added} already there"
    total = container.list_products()(ProductFilter(), PageRequest(page=1, page_size=1)).total
    yield f"catalogue now holds {total} products"
    for (username, password), staff in ((DEMO_CUSTOMER, False), (DEMO_STAFF, True)):
        try:
            container.get_user()(username)
        except UserNotFound:
            container.create_user()(NewUser(username=username, password=password, is_staff=staff))
        kind = "staff" if staff else "customer"
        yield f"demo {kind}: username {username!r} password {password!r}"
