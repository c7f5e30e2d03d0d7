"""Contract tests of the read side: every read of the read unit of work gives the same views in
memory (the unit tests' double), on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from opply.application.dto import (
    CustomerView,
    OrderFilter,
    OrderLineView,
    OrderView,
    PageRequest,
    ProductFilter,
    ProductSort,
    ProductView,
    UserAccess,
    UserFilter,
)
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import DeliveryAddress, Order, OrderStatus, Product, RefreshToken
from tests.integration.contract import T0, add_order, add_products, add_user, order_line, tag

ALL = PageRequest(page=1, page_size=100)


def page(number: int, size: int) -> PageRequest:
    return PageRequest(page=number, page_size=size)


# Products -----------------------------------------------------------------------------------


def test_a_product_view_shows_the_products_columns(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat flour 25kg", 40))
    product = Product(
        name="Rye",
        price=Decimal("3.10"),
        quantity_in_stock=5,
        sku="RYE-5",
        unit="sack",
        description="Whole grain",
        vat_rate=Decimal("5.50"),
        min_order_quantity=10,
        case_size=5,
    )
    with contract_uow.write() as uow:
        uow.products.add(product)
        uow.commit()
    with contract_uow.read() as reads:
        assert reads.product(pid) == ProductView(
            id=pid,
            sku=f"P-{pid:06d}",
            name="Oat flour 25kg",
            description="",
            unit="unit",
            price=Decimal("2.50"),
            vat_rate=Decimal("0.00"),
            quantity_in_stock=40,
            min_order_quantity=1,
            case_size=1,
        )
        assert reads.product(product.id or 0) == ProductView(
            id=product.id or 0,
            sku="RYE-5",
            name="Rye",
            description="Whole grain",
            unit="sack",
            price=Decimal("3.10"),
            vat_rate=Decimal("5.50"),
            quantity_in_stock=5,
            min_order_quantity=10,
            case_size=5,
        )
        assert reads.product(987_654) is None


def test_search_matches_a_sku_too(contract_uow: UnitOfWork) -> None:
    word = tag()
    add_products(contract_uow, (f"Oat {word}", 1))
    product = Product(name="Rye", price=Decimal("1.00"), sku=f"RYE-{word}")
    with contract_uow.write() as uow:
        uow.products.add(product)
        uow.commit()
    with contract_uow.read() as reads:
        found = reads.product_page(ProductFilter(search=word.upper()), ALL)
    assert sorted(p.name for p in found.items) == sorted([f"Oat {word}", "Rye"])


def test_search_is_case_insensitive_and_keeps_the_id_order(contract_uow: UnitOfWork) -> None:
    word = tag()
    ids = add_products(
        contract_uow, (f"OAT flour {word}", 1), (f"Rye {word}", 1), (f"oatmeal {word}", 1)
    )
    with contract_uow.read() as reads:
        found = reads.product_page(ProductFilter(search="oat"), ALL)
        upper = reads.product_page(ProductFilter(search=word.upper()), ALL)
    assert [p.id for p in found.items if word in p.name] == [ids[0], ids[2]]
    assert [p.id for p in upper.items] == ids
    assert upper.total == 3


@pytest.mark.parametrize(
    ("search", "expected"),
    [("0%", ["100% rye"]), ("t_m", ["oat_milk"]), ("%", ["100% rye"]), ("_", ["oat_milk"])],
)
def test_percent_and_underscore_in_a_search_are_literal_characters(
    contract_uow: UnitOfWork, search: str, expected: list[str]
) -> None:
    word = tag()
    add_products(
        contract_uow,
        (f"100% rye {word}", 1),
        (f"100 g rye {word}", 1),
        (f"oat_milk {word}", 1),
        (f"oatXmilk {word}", 1),
    )
    with contract_uow.read() as reads:
        found = reads.product_page(ProductFilter(search=search), ALL)
    names = [p.name.removesuffix(f" {word}") for p in found.items if word in p.name]
    assert names == expected


def test_in_stock_leaves_out_products_with_nothing_on_the_shelf(contract_uow: UnitOfWork) -> None:
    word = tag()
    full, _empty, one = add_products(
        contract_uow, (f"full {word}", 5), (f"empty {word}", 0), (f"one {word}", 1)
    )
    with contract_uow.read() as reads:
        found = reads.product_page(ProductFilter(search=word, in_stock=True), ALL)
    assert [p.id for p in found.items] == [full, one]
    assert found.total == 2


def test_pages_cut_the_list_and_the_total_counts_every_match(contract_uow: UnitOfWork) -> None:
    word = tag()
    ids = add_products(contract_uow, *[(f"p{i} {word}", 1) for i in range(7)])
    flt = ProductFilter(search=word)
    with contract_uow.read() as reads:
        pages = [reads.product_page(flt, page(n, 3)) for n in (1, 2, 3, 4)]
    assert [[p.id for p in found.items] for found in pages] == [ids[:3], ids[3:6], ids[6:], []]
    assert [found.total for found in pages] == [7, 7, 7, 7]


def test_the_whole_catalogue_is_paged_by_id_and_ignores_rolled_back_products(
    contract_uow: UnitOfWork,
) -> None:
    with contract_uow.read() as reads:
        before = reads.product_page(ProductFilter(), page(1, 1)).total
    ids = add_products(contract_uow, ("A", 1), ("B", 0), ("C", 1))
    with contract_uow.write() as uow:
        uow.products.add(Product(name="Rolled back", price=Decimal("1.00")))
    with contract_uow.read() as reads:
        everything = reads.product_page(ProductFilter(), page(1, before + 10))
        last = reads.product_page(ProductFilter(), page(before + 3, 1))
        beyond = reads.product_page(ProductFilter(), page(before + 4, 1))
    assert everything.total == before + 3
    assert [p.id for p in everything.items][-3:] == ids
    assert [p.id for p in last.items] == [ids[-1]]
    assert (list(beyond.items), beyond.total) == ([], before + 3)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (ProductSort.ID, "abcd"),
        (ProductSort.NAME, "abcd"),
        (ProductSort.NAME_DESC, "dcba"),
        (ProductSort.PRICE, "bdac"),
        (ProductSort.PRICE_DESC, "acbd"),
        (ProductSort.STOCK, "bdac"),
        (ProductSort.STOCK_DESC, "acdb"),
    ],
)
def test_products_sort_by_each_column_with_ties_broken_by_id(
    contract_uow: UnitOfWork, sort: ProductSort, expected: str
) -> None:
    word = tag()
    made = {}
    for letter, price, stock in (("a", "2.00", 5), ("b", "1.00", 0), ("c", "2.00", 5)):
        [made[letter]] = add_products(contract_uow, (f"{letter} {word}", stock), price=price)
    [made["d"]] = add_products(contract_uow, (f"d {word}", 1), price="1.00")
    with contract_uow.read() as reads:
        found = reads.product_page(ProductFilter(search=word, sort=sort), ALL)
    by_id = {pid: letter for letter, pid in made.items()}
    assert "".join(by_id[p.id] for p in found.items) == expected


# Orders -------------------------------------------------------------------------------------


def test_an_order_view_shows_its_lines_by_product_with_their_totals_and_customer(
    contract_uow: UnitOfWork,
) -> None:
    a, b = add_products(contract_uow, ("A", 10), ("B", 10))
    customer, other = add_user(contract_uow, "ann"), add_user(contract_uow)
    lines = [
        order_line(b, 1, name="B then", price="3.10", vat="19.00", sku="B-1", unit="kg"),
        order_line(a, 2, name="A then", price="12.50", vat="7.00", sku="A-1", unit="bag"),
    ]
    address = DeliveryAddress(
        recipient="Jane Baker",
        company="Żurek & Co",
        line1="12 Mill Lane",
        line2="",
        postal_code="EC1A 1BB",
        city="London",
        country="GB",
        phone="+44 20 7946 0000",
    )
    order = Order(
        customer_id=customer,
        created_at=T0,
        currency="EUR",
        lines=lines,
        delivery_address=address,
    )
    with contract_uow.write() as uow:
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    expected = OrderView(
        id=order.id,
        status=OrderStatus.PLACED,
        created_at=T0,
        shipped_at=None,
        delivered_at=None,
        cancelled_at=None,
        currency="EUR",
        lines=(
            OrderLineView(
                product_id=a,
                sku="A-1",
                product_name="A then",
                unit="bag",
                unit_price=Decimal("12.50"),
                vat_rate=Decimal("7.00"),
                quantity=2,
                line_net=Decimal("25.00"),
                line_vat=Decimal("1.75"),
                line_total=Decimal("26.75"),
            ),
            OrderLineView(
                product_id=b,
                sku="B-1",
                product_name="B then",
                unit="kg",
                unit_price=Decimal("3.10"),
                vat_rate=Decimal("19.00"),
                quantity=1,
                line_net=Decimal("3.10"),
                line_vat=Decimal("0.59"),
                line_total=Decimal("3.69"),
            ),
        ),
        subtotal=Decimal("28.10"),
        vat_total=Decimal("2.34"),
        total=Decimal("30.44"),
        delivery_address=address,
        invoice_number=None,
        customer=CustomerView(id=customer, username="ann"),
    )
    with contract_uow.read() as reads:
        assert reads.order(order.id, customer_id=customer) == expected
        assert reads.order(order.id) == expected  # staff: anyone's
        assert reads.order(order.id, customer_id=other) is None
        assert reads.order(987_654, customer_id=customer) is None
        assert reads.order(987_654) is None


def test_a_customers_orders_are_listed_newest_first_with_ties_broken_by_id(
    contract_uow: UnitOfWork,
) -> None:
    [pid] = add_products(contract_uow, ("A", 10))
    alice, bob = add_user(contract_uow), add_user(contract_uow)
    oldest = add_order(contract_uow, alice, pid, at=T0)
    tie_1 = add_order(contract_uow, alice, pid, at=T0 + timedelta(hours=1))
    newest = add_order(contract_uow, alice, pid, at=T0 + timedelta(hours=2))
    tie_2 = add_order(contract_uow, alice, pid, at=T0 + timedelta(hours=1))
    add_order(contract_uow, bob, pid, at=T0 + timedelta(hours=3))
    with contract_uow.read() as reads:
        found = reads.order_page(OrderFilter(customer_id=alice), page(1, 10))
    assert [o.id for o in found.items] == [newest, tie_2, tie_1, oldest]
    assert found.total == 4


def test_listing_orders_pages_without_repeating_or_skipping(contract_uow: UnitOfWork) -> None:
    a, b = add_products(contract_uow, ("A", 10), ("B", 10))
    alice = add_user(contract_uow)
    ids = [add_order(contract_uow, alice, a, b, at=T0 + timedelta(minutes=i % 2)) for i in range(5)]
    flt = OrderFilter(customer_id=alice)
    with contract_uow.read() as reads:
        pages = [reads.order_page(flt, page(n, 2)) for n in (1, 2, 3, 4)]
    seen = [o.id for found in pages for o in found.items]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen)) == 5
    assert all(len(o.lines) == 2 for found in pages for o in found.items)
    assert list(pages[-1].items) == []
    assert {found.total for found in pages} == {5}


def test_orders_filter_by_status_customer_and_username(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("A", 10))
    ann, bob = add_user(contract_uow, "ann-r"), add_user(contract_uow, "bob-r")
    placed = add_order(contract_uow, ann, pid, quantity=3)
    cancelled = add_order(
        contract_uow, ann, pid, quantity=2, status=OrderStatus.CANCELLED, at=T0 + timedelta(1)
    )
    bobs = add_order(contract_uow, bob, pid, at=T0 + timedelta(2))

    def ids(**conditions: object) -> tuple[list[int], int]:
        with contract_uow.read() as reads:
            found = reads.order_page(OrderFilter(**conditions), page(1, 10))  # type: ignore[arg-type]
        return [o.id for o in found.items], found.total

    assert ids(customer_id=ann, status=OrderStatus.CANCELLED) == ([cancelled], 1)
    assert ids(customer_id=ann, status=OrderStatus.PLACED) == ([placed], 1)
    assert ids(customer_username="ann-r") == ([cancelled, placed], 2)
    assert ids(customer_username="bob-r", status=OrderStatus.PLACED) == ([bobs], 1)
    assert ids(customer_username="nobody") == ([], 0)
    assert ids() == ([bobs, cancelled, placed], 3)
    with contract_uow.read() as reads:
        only = reads.order_page(OrderFilter(customer_id=ann, status=OrderStatus.PLACED), ALL)
    assert [(line.product_id, line.quantity) for line in only.items[0].lines] == [(pid, 3)]
    assert only.items[0].total == Decimal("37.50")
    assert only.items[0].customer == CustomerView(id=ann, username="ann-r")


def test_a_customer_without_orders_gets_an_empty_page(contract_uow: UnitOfWork) -> None:
    alice = add_user(contract_uow)
    with contract_uow.read() as reads:
        found = reads.order_page(OrderFilter(customer_id=alice), page(1, 10))
    assert (list(found.items), found.total) == ([], 0)


# Users --------------------------------------------------------------------------------------


def test_the_reads_of_a_user(contract_uow: UnitOfWork) -> None:
    user_id = add_user(contract_uow, "dora", staff=True)
    with contract_uow.read() as reads:
        access = reads.user_access(user_id, login="none")
        credentials = reads.credentials("dora")
        user = reads.user("dora")
        assert reads.user_access(987_654, login="none") is None
        assert reads.credentials("nobody") is None
        assert reads.user("nobody") is None
    assert access is not None
    assert access == UserAccess(
        username="dora", is_active=True, is_staff=True, token_version=0, login_revoked=False
    )
    assert credentials is not None
    assert (credentials.id, credentials.password_hash) == (user_id, "hash")
    assert user is not None
    assert (user.id, user.username, user.is_staff, user.is_active) == (user_id, "dora", True, True)


def test_users_are_listed_by_username_and_searched(contract_uow: UnitOfWork) -> None:
    word = tag()
    for name in (f"carol-{word}", f"Carlos-{word}", f"dave-{word}"):
        add_user(contract_uow, name)
    with contract_uow.read() as reads:
        found = reads.user_page(UserFilter(search="CAR"), page(1, 10))
        mine = reads.user_page(UserFilter(search=word), page(1, 2))
        second = reads.user_page(UserFilter(search=word), page(2, 2))
    assert sorted(u.username for u in found.items) == [f"Carlos-{word}", f"carol-{word}"]
    assert found.total == 2
    assert [u.username for u in mine.items] == [f"Carlos-{word}", f"carol-{word}"]
    assert [u.username for u in second.items] == [f"dave-{word}"]
    assert mine.total == second.total == 3


def test_the_caller_check_sees_a_revoked_login(contract_uow: UnitOfWork) -> None:
    user_id = add_user(contract_uow)
    with contract_uow.write() as uow:
        for family in ("kept", "ended"):
            uow.refresh_tokens.add(
                RefreshToken(
                    jti=f"jti-{family}-{user_id}",
                    family_id=f"{family}-{user_id}",
                    user_id=user_id,
                    issued_at=T0,
                    expires_at=T0 + timedelta(days=7),
                )
            )
        uow.refresh_tokens.revoke_family(f"ended-{user_id}", T0)
        uow.commit()
    with contract_uow.read() as reads:
        kept = reads.user_access(user_id, login=f"kept-{user_id}")
        ended = reads.user_access(user_id, login=f"ended-{user_id}")
        unknown = reads.user_access(user_id, login="never-issued")
    assert kept is not None
    assert ended is not None
    assert unknown is not None
    assert (kept.login_revoked, ended.login_revoked, unknown.login_revoked) == (False, True, False)
