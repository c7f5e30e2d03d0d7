"""A small demo catalogue and two demo accounts, loaded idempotently by ``opply demo load``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from opply.application.dto import NewProduct, NewUser, PageRequest, ProductFilter
from opply.domain.errors import UserNotFound
from opply.entrypoints.container import Container

DEMO_CUSTOMER = ("demo", "demo-pass-2026")
DEMO_STAFF = ("staff", "staff-pass-2026")

# sku, name, description, unit, net price, VAT rate, stock. VAT as in Germany: 7% for most
# food, 19% for drinks such as juices and plant drinks, and for non-food.
CATALOGUE: list[tuple[str, str, str, str, str, str, int]] = [
    ("OAT-FL-25", "Oat flour 25kg", "Fine-milled, gluten-free", "bag", "12.50", "7.00", 40),
    ("OAT-RL-10", "Rolled oats 10kg", "Large flakes, for porridge", "bag", "9.80", "7.00", 60),
    ("SPL-FL-25", "Spelt flour 25kg", "Type 630, stone-milled", "bag", "18.90", "7.00", 25),
    ("RYE-FL-25", "Rye flour 25kg", "Type 1150, for sourdough", "bag", "14.20", "7.00", 30),
    ("BWT-GR-05", "Buckwheat groats 5kg", "Hulled, untoasted", "bag", "11.40", "7.00", 35),
    ("CHK-FL-10", "Chickpea flour 10kg", "Besan, finely ground", "bag", "16.75", "7.00", 20),
    ("ALM-FL-05", "Almond flour 5kg", "Blanched, super-fine", "bag", "42.00", "7.00", 12),
    (
        "CCN-SG-05",
        "Coconut sugar 5kg",
        "Unrefined, from coconut blossom",
        "bag",
        "24.60",
        "7.00",
        18,
    ),
    ("CNE-SG-25", "Cane sugar 25kg", "Raw, light brown", "bag", "21.30", "7.00", 50),
    ("MPL-SY-05", "Maple syrup 5L", "Grade A, amber", "canister", "58.00", "7.00", 10),
    ("AGV-SY-05", "Agave syrup 5L", "Light, mild taste", "canister", "31.50", "7.00", 14),
    ("CCO-PW-05", "Cocoa powder 5kg", "Low-fat, 10-12% cocoa butter", "bag", "37.90", "7.00", 16),
    ("CHC-DR-05", "Dark chocolate drops 5kg", "70% cocoa, bake-stable", "bag", "49.50", "7.00", 22),
    (
        "VNL-EX-01",
        "Vanilla extract 1L",
        "Bourbon vanilla, alcohol-based",
        "bottle",
        "64.00",
        "19.00",
        8,
    ),
    ("SNF-OL-10", "Sunflower oil 10L", "High-oleic, for frying", "canister", "23.10", "7.00", 40),
    ("RPS-OL-10", "Rapeseed oil 10L", "Cold-pressed", "canister", "19.80", "7.00", 45),
    (
        "OLV-OL-05",
        "Extra virgin olive oil 5L",
        "First cold pressing",
        "canister",
        "44.90",
        "7.00",
        15,
    ),
    ("SEA-SL-05", "Sea salt 5kg", "Fine, unrefined", "bag", "6.40", "7.00", 80),
    ("BKG-PW-01", "Baking powder 1kg", "Phosphate-free", "tub", "7.20", "7.00", 55),
    ("YST-DR-500", "Dried yeast 500g", "Instant, vacuum-packed", "pack", "8.90", "7.00", 40),
    ("PEA-PR-05", "Pea protein 5kg", "80% protein isolate", "bag", "39.00", "7.00", 20),
    ("HMP-SD-05", "Hemp seeds 5kg", "Hulled", "bag", "34.50", "7.00", 12),
    ("CHI-SD-05", "Chia seeds 5kg", "Black", "bag", "27.80", "7.00", 18),
    ("PMP-SD-05", "Pumpkin seeds 5kg", "Shine-skin, grade AA", "bag", "29.40", "7.00", 16),
    ("SUN-SD-10", "Sunflower seeds 10kg", "Hulled, bakery grade", "bag", "22.00", "7.00", 25),
    ("CRN-DR-05", "Dried cranberries 5kg", "Sweetened, sliced", "bag", "33.60", "7.00", 14),
    ("RSN-DR-10", "Raisins 10kg", "Thompson seedless", "box", "28.20", "7.00", 20),
    ("DTE-PT-05", "Dates, pitted 5kg", "Deglet Nour", "box", "26.90", "7.00", 22),
    ("OAT-MK-12", "Oat milk barista 12x1L", "Foams for coffee", "case of 12", "21.60", "19.00", 30),
    (
        "APL-JC-05",
        "Apple juice concentrate 5L",
        "70 Brix, not from fruit on site",
        "canister",
        "17.50",
        "19.00",
        0,
    ),
]


# Ordering rules of a few products, by SKU: (min_order_quantity, case_size). Oat milk comes in
# cases of 12 cartons sold as one unit, so by the case; the rest are sold by the unit.
ORDERING_RULES: dict[str, tuple[int, int]] = {
    "YST-DR-500": (10, 10),  # dried yeast, in boxes of 10 packs
    "BKG-PW-01": (6, 6),  # baking powder, 6 tubs a carton
    "VNL-EX-01": (2, 2),  # vanilla extract, bottles in pairs
    "SEA-SL-05": (4, 2),  # sea salt: at least 4 bags, in pairs
}


def load_demo(container: Container) -> Iterator[str]:
    everything = PageRequest(page=1, page_size=len(CATALOGUE) + 10_000)
    existing = {p.name for p in container.list_products()(ProductFilter(), everything).items}
    added = 0
    for sku, name, description, unit, price, vat_rate, stock in CATALOGUE:
        if name not in existing:
            min_order_quantity, case_size = ORDERING_RULES.get(sku, (1, 1))
            container.create_product()(
                NewProduct(
                    sku=sku,
                    name=name,
                    description=description,
                    unit=unit,
                    price=Decimal(price),
                    vat_rate=Decimal(vat_rate),
                    quantity_in_stock=stock,
                    min_order_quantity=min_order_quantity,
                    case_size=case_size,
                )
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
