"""v1.2's rules, in the domain and through the use cases on the in-memory adapters: minimums
and case sizes, the address book, orders that go somewhere, reorder, invoice numbers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from opply.adapters.memory import FixedClock, InMemoryStore, InMemoryUnitOfWork
from opply.application.addresses import AddAddress, DeleteAddress, ListMyAddresses, UpdateAddress
from opply.application.dto import NewAddress, OrderView, PlaceOrderCommand
from opply.application.orders import (
    GetMyInvoice,
    MoveOrder,
    OrderAction,
    PlaceOrder,
    Reorder,
    request_fingerprint,
)
from opply.domain.errors import (
    AddressBookFull,
    AddressNotFound,
    BelowMinimumQuantity,
    DefaultAddressRequired,
    InvalidAddress,
    InvalidCountry,
    InvalidProductField,
    InvoiceNotIssued,
    NotACaseMultiple,
    OrderNotFound,
    OutOfStock,
    RuleBreach,
    UnknownAddress,
    UnknownProducts,
)
from opply.domain.model import (
    Address,
    AddressBook,
    LineRequest,
    Order,
    Product,
    invoice_number,
    validate_country,
)

NOW = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
ALICE, BOB = 1, 2


def product(pid: int, *, stock: int = 100, minimum: int = 1, case: int = 1) -> Product:
    return Product(
        name=f"P{pid}",
        price=Decimal("1.00"),
        quantity_in_stock=stock,
        min_order_quantity=minimum,
        case_size=case,
        id=pid,
    )


def place(products: dict[int, Product], *pairs: tuple[int, int]) -> Order:
    return Order.place(
        customer_id=ALICE,
        requests=[LineRequest(product_id=pid, quantity=qty) for pid, qty in pairs],
        products=products,
        created_at=NOW,
        currency="EUR",
    )


# --- minimums and case sizes ----------------------------------------------------------------------


def test_a_product_sells_by_the_unit_unless_told() -> None:
    p = Product(name="Oat", price=Decimal("1.00"))
    assert (p.min_order_quantity, p.case_size) == (1, 1)


@pytest.mark.parametrize(
    ("minimum", "case"), [(0, 1), (1, 0), (10_001, 1), (1, 10_001), (3, 2), (True, 1), (1, "6")]
)
def test_a_minimum_out_of_bounds_or_not_whole_cases_is_refused(minimum: Any, case: Any) -> None:
    with pytest.raises(InvalidProductField):
        Product(name="Oat", price=Decimal("1.00"), min_order_quantity=minimum, case_size=case)


def test_a_rule_change_that_breaks_whole_cases_changes_nothing() -> None:
    p = product(1, minimum=12, case=6)
    with pytest.raises(InvalidProductField):
        p.update(case_size=5)
    with pytest.raises(InvalidProductField):
        p.update(min_order_quantity=13, name="Renamed")
    assert (p.min_order_quantity, p.case_size, p.name) == (12, 6, "P1")
    p.update(min_order_quantity=10, case_size=5)
    assert (p.min_order_quantity, p.case_size) == (10, 5)


def test_every_breaking_line_is_listed_and_a_minimum_names_the_error() -> None:
    products = {1: product(1, minimum=12, case=6), 2: product(2, minimum=2, case=2), 3: product(3)}
    with pytest.raises(BelowMinimumQuantity) as below:
        place(products, (1, 6), (2, 3), (3, 1))
    assert below.value.breaches == (
        RuleBreach(product_id=1, quantity=6, min_order_quantity=12, case_size=6),
        RuleBreach(product_id=2, quantity=3, min_order_quantity=2, case_size=2),
    )
    with pytest.raises(NotACaseMultiple) as cases:
        place(products, (1, 13))
    assert cases.value.code == "not_a_case_multiple"
    assert [p.quantity_in_stock for p in products.values()] == [100, 100, 100]
    assert place(products, (1, 18), (2, 4)).lines[0].quantity == 18


def test_unknown_products_come_before_the_rules_and_the_rules_before_stock() -> None:
    products = {1: product(1, stock=5, minimum=12, case=6)}
    with pytest.raises(UnknownProducts):
        place(products, (1, 1), (9, 1))
    with pytest.raises(BelowMinimumQuantity):
        place(products, (1, 6))
    with pytest.raises(OutOfStock):
        place(products, (1, 12))


# --- the address book -----------------------------------------------------------------------------


def address(recipient: str = "Jane", **changes: Any) -> Address:
    fields: dict[str, Any] = {
        "recipient": recipient,
        "line1": "1 Mill Lane",
        "postal_code": "LS1 1AA",
        "city": "Leeds",
        "country": "gb",
        **changes,
    }
    return Address(customer_id=ALICE, **fields)


@pytest.mark.parametrize("code", ["XX", "UK", "G", "GBR", "1A", "ÉÉ", ""])
def test_a_country_must_be_an_assigned_alpha_2_code(code: str) -> None:
    with pytest.raises(InvalidCountry):
        validate_country(code)


def test_a_country_in_any_case_is_kept_upper_case() -> None:
    assert [validate_country(c) for c in ("gb", "De", "PL")] == ["GB", "DE", "PL"]


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": " "},
        {"line1": "x" * 129},
        {"postal_code": "1" * 17},
        {"city": ""},
        {"phone": "+44 ext. 3"},
        {"label": "l" * 65},
    ],
)
def test_an_address_field_out_of_bounds_is_refused(changes: dict[str, str]) -> None:
    with pytest.raises(InvalidAddress):
        address(**changes)


def test_a_book_keeps_exactly_one_default_through_adds_moves_and_removals() -> None:
    book = AddressBook(customer_id=ALICE, addresses=[])
    first, second, third = address("first", id=1), address("second", id=2), address("third", id=3)
    book.add(first)
    book.add(second)
    book.add(third, make_default=True)
    assert [a.is_default for a in book.addresses] == [False, False, True]
    book.update(first, {"is_default": True})
    assert book.default is first
    with pytest.raises(DefaultAddressRequired):
        book.update(first, {"is_default": False, "city": "York"})
    assert first.city == "Leeds"  # refused: nothing changed
    book.remove(first)
    assert book.default is third  # the most recently added left
    book.remove(third)
    book.remove(second)
    assert book.default is None


def test_a_full_book_refuses_another() -> None:
    book = AddressBook(customer_id=ALICE, addresses=[address(id=n) for n in range(20)])
    with pytest.raises(AddressBookFull):
        book.add(address())


# --- through the use cases ------------------------------------------------------------------------


@pytest.fixture
def new_address() -> Callable[..., NewAddress]:
    def make(recipient: str = "Jane", **changes: Any) -> NewAddress:
        return NewAddress(
            recipient=recipient,
            line1="1 Mill Lane",
            postal_code="LS1 1AA",
            city="Leeds",
            country="gb",
            **changes,
        )

    return make


def test_the_book_use_cases_keep_one_default_and_refuse_another_customers_address(
    uow: InMemoryUnitOfWork, new_address: Callable[..., NewAddress]
) -> None:
    add, update, delete = AddAddress(uow), UpdateAddress(uow), DeleteAddress(uow)
    listed = ListMyAddresses(uow)
    first = add(ALICE, new_address("first"))
    second = add(ALICE, new_address("second", is_default=True))
    assert [(a.recipient, a.is_default) for a in listed(ALICE)] == [
        ("second", True),
        ("first", False),
    ]
    with pytest.raises(AddressNotFound):
        update(BOB, first.id, {"city": "York"})
    with pytest.raises(AddressNotFound):
        delete(BOB, first.id)
    delete(ALICE, second.id)
    assert [(a.recipient, a.is_default) for a in listed(ALICE)] == [("first", True)]


@pytest.fixture
def place_order(
    uow: InMemoryUnitOfWork, clock: FixedClock, add_user: Callable[..., int]
) -> PlaceOrder:
    assert (add_user("alice"), add_user("bob")) == (ALICE, BOB)
    return PlaceOrder(uow, clock, "EUR")


def _add_products(store: InMemoryStore, *products: Product) -> None:
    with InMemoryUnitOfWork(store).write() as tx:
        for p in products:
            p.id = None
            tx.products.add(p)
        tx.commit()


def test_an_order_copies_the_default_or_the_named_address_and_refuses_anothers(
    uow: InMemoryUnitOfWork,
    store: InMemoryStore,
    place_order: PlaceOrder,
    new_address: Callable[..., NewAddress],
) -> None:
    _add_products(store, product(1))
    lines = [LineRequest(product_id=1, quantity=1)]
    assert (
        place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines)).order.delivery_address
        is None
    )
    home = AddAddress(uow)(ALICE, new_address("home"))
    shop = AddAddress(uow)(ALICE, new_address("shop"))
    bobs = AddAddress(uow)(BOB, new_address("bob"))
    to_default = place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines))
    to_shop = place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines, address_id=shop.id))
    assert to_default.order.delivery_address.recipient == home.recipient
    assert to_shop.order.delivery_address.recipient == "shop"
    with pytest.raises(UnknownAddress):
        place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines, address_id=bobs.id))
    assert store.tables.products[1].quantity_in_stock == 97  # three placed, the refused none


def test_an_orders_fingerprint_without_an_address_is_what_it_was_before_addresses() -> None:
    lines = [LineRequest(product_id=7, quantity=2)]
    plain = PlaceOrderCommand(customer_id=ALICE, lines=lines)
    # the digest v1.1 kept with a key for this body: a retry across the upgrade still replays
    assert request_fingerprint(plain) == hashlib.sha256(b"[[7, 2]]").hexdigest()
    addressed = PlaceOrderCommand(customer_id=ALICE, lines=lines, address_id=3)
    assert request_fingerprint(addressed) != request_fingerprint(plain)


def test_a_reorder_is_placed_by_place_order_with_the_old_lines(
    uow: InMemoryUnitOfWork, store: InMemoryStore, place_order: PlaceOrder, clock: FixedClock
) -> None:
    _add_products(store, product(1), product(2))
    lines = [LineRequest(product_id=1, quantity=3), LineRequest(product_id=2, quantity=1)]
    first = place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines))
    MoveOrder(uow, clock)(first.order_id, OrderAction.CANCEL)
    calls: list[PlaceOrderCommand] = []

    class Spy(PlaceOrder):
        def __call__(self, cmd: PlaceOrderCommand) -> Any:
            calls.append(cmd)
            return super().__call__(cmd)

    reorder = Reorder(uow, Spy(uow, clock, "EUR"))
    again = reorder(ALICE, first.order_id, idempotency_key="k")
    assert again.order_id != first.order_id
    assert calls == [PlaceOrderCommand(customer_id=ALICE, lines=lines, idempotency_key="k")]
    assert reorder(ALICE, first.order_id, idempotency_key="k").replayed
    with pytest.raises(OrderNotFound):
        reorder(BOB, first.order_id)


def test_shipping_gives_the_years_next_invoice_number_and_only_then_an_invoice(
    uow: InMemoryUnitOfWork, store: InMemoryStore, place_order: PlaceOrder, clock: FixedClock
) -> None:
    _add_products(store, product(1))
    lines = [LineRequest(product_id=1, quantity=1)]
    ids = [
        place_order(PlaceOrderCommand(customer_id=ALICE, lines=lines)).order_id for _ in range(3)
    ]
    rendered: list[OrderView] = []

    class Renderer:
        media_type = "application/pdf"

        def render(self, order: OrderView) -> bytes:
            rendered.append(order)
            return b"%PDF"

    invoice = GetMyInvoice(uow, Renderer())
    with pytest.raises(InvoiceNotIssued):
        invoice(ALICE, ids[0])
    move = MoveOrder(uow, clock)
    shipped = [move(i, OrderAction.SHIP).invoice_number for i in ids[:2]]
    assert shipped == ["INV-2026-000001", "INV-2026-000002"]
    clock.advance(days=40)  # into the next year: the count starts again
    assert move(ids[2], OrderAction.SHIP).invoice_number == "INV-2027-000001"
    got = invoice(ALICE, ids[0])
    assert (got.number, got.content, got.media_type) == (
        "INV-2026-000001",
        b"%PDF",
        "application/pdf",
    )
    assert rendered[0].invoice_number == "INV-2026-000001"
    with pytest.raises(OrderNotFound):
        invoice(BOB, ids[0])


def test_an_invoice_number_has_the_year_and_six_digits() -> None:
    assert invoice_number(2026, 42) == "INV-2026-000042"
    assert invoice_number(2027, 1_234_567) == "INV-2027-1234567"
