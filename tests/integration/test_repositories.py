"""Contract tests: the in-memory repositories (the unit tests' doubles) and the SQL ones behave
alike. Every test runs three times: in memory, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from opply.adapters.memory import InMemoryStore, InMemoryUnitOfWork
from opply.application.ports import ProductFilter
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)
from tests.integration.conftest import Database

UowFactory = Callable[[], UnitOfWork]
T0 = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
_seq = itertools.count(1)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Database | None:
    """Overrides the conftest's ``database`` to add the in-memory twin (``None``)."""
    if request.param == "memory":
        return None
    name = {"sqlite": "sqlite_database", "postgresql": "postgres_database"}[request.param]
    db: Database = request.getfixturevalue(name)
    return db


@pytest.fixture
def new_uow(database: Database | None, request: pytest.FixtureRequest) -> UowFactory:
    if database is None:
        store = InMemoryStore()
        return lambda: InMemoryUnitOfWork(store)
    # The conftest's factory: a savepoint inside a transaction rolled back after the test.
    factory: UowFactory = request.getfixturevalue("uow_factory")
    return factory


def _tag() -> str:
    """A word no other test's product names contain."""
    return f"zq{uuid.uuid4().hex[:8]}"


def _add_products(new_uow: UowFactory, *specs: tuple[str, int]) -> list[int]:
    with new_uow().for_write() as uow:
        made = [Product(name, Decimal("2.50"), stock) for name, stock in specs]
        for product in made:
            uow.products.add(product)
        uow.commit()
    ids = [p.id for p in made]
    assert all(isinstance(i, int) for i in ids)
    return [i for i in ids if i is not None]


def _add_user(new_uow: UowFactory, username: str | None = None) -> int:
    with new_uow().for_write() as uow:
        user = User(username or f"u{next(_seq)}-{_tag()}", "hash")
        uow.users.add(user)
        uow.commit()
    assert user.id is not None
    return user.id


def _add_order(
    new_uow: UowFactory,
    customer_id: int,
    product_id: int,
    *,
    at: datetime = T0,
    quantity: int = 1,
    status: OrderStatus = OrderStatus.PLACED,
) -> int:
    with new_uow().for_write() as uow:
        line = OrderLine(product_id, "Oat flour 25kg", Decimal("12.50"), quantity)
        order = Order(customer_id, at, "EUR", lines=[line], status=status)
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    return order.id


# Products -----------------------------------------------------------------------------------


def test_an_added_product_gets_an_id_and_reads_back_the_same(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("Oat flour 25kg", 40))
    with new_uow() as uow:
        product = uow.products.get(pid)
        assert product is not None
        assert (product.id, product.name, product.price, product.quantity_in_stock) == (
            pid,
            "Oat flour 25kg",
            Decimal("2.50"),
            40,
        )


def test_an_unknown_product_is_none(new_uow: UowFactory) -> None:
    with new_uow() as uow:
        assert uow.products.get(987_654) is None


def test_get_for_update_returns_only_the_products_that_exist_keyed_by_id(
    new_uow: UowFactory,
) -> None:
    a, b = _add_products(new_uow, ("A", 1), ("B", 2))
    with new_uow().for_write() as uow:
        found = uow.products.get_for_update([b, 987_654, a])
        assert sorted(found) == sorted([a, b])
        assert found[a].name == "A"
        assert found[b].quantity_in_stock == 2
        assert uow.products.get_for_update([]) == {}


def test_stock_taken_through_get_for_update_is_saved_on_commit(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("Rye", 5))
    with new_uow().for_write() as uow:
        uow.products.get_for_update([pid])[pid].take(3)
        uow.commit()
    with new_uow() as uow:
        product = uow.products.get(pid)
        assert product is not None
        assert product.quantity_in_stock == 2


def test_search_is_case_insensitive_and_keeps_the_id_order(new_uow: UowFactory) -> None:
    tag = _tag()
    ids = _add_products(new_uow, (f"OAT flour {tag}", 1), (f"Rye {tag}", 1), (f"oatmeal {tag}", 1))
    with new_uow() as uow:
        page = uow.products.list(ProductFilter(search="oat"), 0, 100)
        found = [p.id for p in page.items if tag in p.name]
        assert found == [ids[0], ids[2]]
        upper = uow.products.list(ProductFilter(search=tag.upper()), 0, 100)
        assert [p.id for p in upper.items] == ids
        assert upper.total == 3


@pytest.mark.parametrize(
    ("search", "expected"),
    [("0%", ["100% rye"]), ("t_m", ["oat_milk"]), ("%", ["100% rye"]), ("_", ["oat_milk"])],
)
def test_percent_and_underscore_in_a_search_are_literal_characters(
    new_uow: UowFactory, search: str, expected: list[str]
) -> None:
    tag = _tag()
    _add_products(
        new_uow,
        (f"100% rye {tag}", 1),
        (f"100 g rye {tag}", 1),
        (f"oat_milk {tag}", 1),
        (f"oatXmilk {tag}", 1),
    )
    with new_uow() as uow:
        page = uow.products.list(ProductFilter(search=search), 0, 100)
        names = [p.name.removesuffix(f" {tag}") for p in page.items if tag in p.name]
        assert names == expected


def test_in_stock_leaves_out_products_with_nothing_on_the_shelf(new_uow: UowFactory) -> None:
    tag = _tag()
    full, _empty, one = _add_products(
        new_uow, (f"full {tag}", 5), (f"empty {tag}", 0), (f"one {tag}", 1)
    )
    with new_uow() as uow:
        page = uow.products.list(ProductFilter(search=tag, in_stock=True), 0, 100)
        assert [p.id for p in page.items] == [full, one]
        assert page.total == 2


def test_offset_and_limit_cut_a_page_and_total_counts_every_match(new_uow: UowFactory) -> None:
    tag = _tag()
    ids = _add_products(new_uow, *[(f"p{i} {tag}", 1) for i in range(7)])
    flt = ProductFilter(search=tag)
    with new_uow() as uow:
        pages = [uow.products.list(flt, offset, 3) for offset in (0, 3, 6, 9)]
        assert [[p.id for p in page.items] for page in pages] == [ids[:3], ids[3:6], ids[6:], []]
        assert [page.total for page in pages] == [7, 7, 7, 7]


def test_the_unfiltered_total_counts_every_product_and_ignores_rolled_back_ones(
    new_uow: UowFactory,
) -> None:
    with new_uow() as uow:
        before = uow.products.list(ProductFilter(), 0, 1).total
    ids = _add_products(new_uow, ("A", 1), ("B", 0), ("C", 1))
    with new_uow().for_write() as uow:
        uow.products.add(Product("Rolled back", Decimal("1.00"), 1))
    with new_uow() as uow:
        page = uow.products.list(ProductFilter(), before, 10)
        assert page.total == before + 3
        assert [p.id for p in page.items] == ids
        assert list(uow.products.list(ProductFilter(), before + 3, 10).items) == []


# Orders -------------------------------------------------------------------------------------


def test_an_added_order_reads_back_with_its_lines_for_its_customer(new_uow: UowFactory) -> None:
    a, b = _add_products(new_uow, ("A", 10), ("B", 10))
    customer = _add_user(new_uow)
    with new_uow().for_write() as uow:
        order = Order(
            customer,
            T0,
            "EUR",
            lines=[
                OrderLine(b, "B at the time", Decimal("3.10"), 1),
                OrderLine(a, "A at the time", Decimal("12.50"), 2),
            ],
        )
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    with new_uow() as uow:
        found = uow.orders.get_for_customer(order.id, customer)
        assert found is not None
        assert found.id == order.id
        assert found.status is OrderStatus.PLACED
        assert found.created_at == T0
        assert found.currency == "EUR"
        assert sorted(found.lines, key=lambda ln: ln.product_id) == [
            OrderLine(a, "A at the time", Decimal("12.50"), 2),
            OrderLine(b, "B at the time", Decimal("3.10"), 1),
        ]
        assert found.total == Decimal("28.10")


def test_another_customers_order_is_not_there(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice, bob = _add_user(new_uow), _add_user(new_uow)
    order_id = _add_order(new_uow, alice, pid)
    with new_uow().for_write() as uow:
        assert uow.orders.get_for_customer(order_id, bob) is None
        assert uow.orders.get_for_customer(order_id, bob, for_update=True) is None
        assert uow.orders.get_for_customer(987_654, alice) is None


def test_a_customers_orders_are_listed_newest_first_with_ties_broken_by_id(
    new_uow: UowFactory,
) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice, bob = _add_user(new_uow), _add_user(new_uow)
    oldest = _add_order(new_uow, alice, pid, at=T0)
    tie_1 = _add_order(new_uow, alice, pid, at=T0 + timedelta(hours=1))
    newest = _add_order(new_uow, alice, pid, at=T0 + timedelta(hours=2))
    tie_2 = _add_order(new_uow, alice, pid, at=T0 + timedelta(hours=1))
    _add_order(new_uow, bob, pid, at=T0 + timedelta(hours=3))
    with new_uow() as uow:
        page = uow.orders.list_for_customer(alice, None, 0, 10)
        assert [o.id for o in page.items] == [newest, tie_2, tie_1, oldest]
        assert page.total == 4


def test_listing_orders_pages_without_repeating_or_skipping(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice = _add_user(new_uow)
    ids = [_add_order(new_uow, alice, pid, at=T0 + timedelta(minutes=i % 2)) for i in range(5)]
    with new_uow() as uow:
        pages = [uow.orders.list_for_customer(alice, None, offset, 2) for offset in (0, 2, 4, 6)]
        seen = [o.id for page in pages for o in page.items]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen)) == 5
    assert list(pages[-1].items) == []
    assert {page.total for page in pages} == {5}


def test_listing_orders_filters_by_status_and_loads_the_lines(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice = _add_user(new_uow)
    placed = _add_order(new_uow, alice, pid, quantity=3)
    cancelled = _add_order(new_uow, alice, pid, quantity=2, status=OrderStatus.CANCELLED)
    with new_uow() as uow:
        only_cancelled = uow.orders.list_for_customer(alice, OrderStatus.CANCELLED, 0, 10)
        only_placed = uow.orders.list_for_customer(alice, OrderStatus.PLACED, 0, 10)
        assert [(o.id, o.status) for o in only_cancelled.items] == [
            (cancelled, OrderStatus.CANCELLED)
        ]
        assert only_cancelled.total == 1
        assert [o.id for o in only_placed.items] == [placed]
        assert [(ln.product_id, ln.quantity) for ln in only_placed.items[0].lines] == [(pid, 3)]
        assert only_placed.items[0].total == Decimal("37.50")


def test_a_customer_without_orders_gets_an_empty_page(new_uow: UowFactory) -> None:
    alice = _add_user(new_uow)
    with new_uow() as uow:
        page = uow.orders.list_for_customer(alice, None, 0, 10)
    assert (list(page.items), page.total) == ([], 0)


# Users --------------------------------------------------------------------------------------


def test_a_user_is_found_by_id_and_by_username(new_uow: UowFactory) -> None:
    username = f"alice-{_tag()}"
    user_id = _add_user(new_uow, username)
    with new_uow() as uow:
        by_name = uow.users.get_by_username(username)
        by_id = uow.users.get(user_id)
        assert by_name is not None
        assert by_id is not None
        assert (by_name.id, by_name.username, by_name.is_staff, by_name.is_active) == (
            user_id,
            username,
            False,
            True,
        )
        assert by_id.username == username
        assert uow.users.get_by_username(f"nobody-{_tag()}") is None
        assert uow.users.get(987_654) is None


# Refresh tokens -----------------------------------------------------------------------------


def _token(user_id: int, family: str, *, revoked_at: datetime | None = None) -> RefreshToken:
    return RefreshToken(
        jti=uuid.uuid4().hex,
        family_id=family,
        user_id=user_id,
        issued_at=T0,
        expires_at=T0 + timedelta(days=7),
        revoked_at=revoked_at,
    )


def test_revoking_a_family_revokes_every_token_of_it_and_no_other(new_uow: UowFactory) -> None:
    user = _add_user(new_uow)
    family, other = uuid.uuid4().hex, uuid.uuid4().hex
    earlier = T0 - timedelta(hours=1)
    tokens = [_token(user, family), _token(user, family), _token(user, other)]
    already = _token(user, family, revoked_at=earlier)
    with new_uow().for_write() as uow:
        for token in [*tokens, already]:
            uow.refresh_tokens.add(token)
        uow.commit()
    with new_uow().for_write() as uow:
        uow.refresh_tokens.revoke_family(family, T0)
        uow.commit()
    with new_uow().for_write() as uow:
        revoked = {t.jti: uow.refresh_tokens.get_for_update(t.jti) for t in [*tokens, already]}
        assert all(r is not None for r in revoked.values())
        at = {jti: r.revoked_at for jti, r in revoked.items() if r is not None}
        assert at[tokens[0].jti] == at[tokens[1].jti] == T0
        assert at[tokens[2].jti] is None
        assert at[already.jti] == earlier  # the first revocation time is kept
        assert uow.refresh_tokens.get_for_update(uuid.uuid4().hex) is None


def test_a_used_refresh_token_reads_back_as_spent(new_uow: UowFactory) -> None:
    user = _add_user(new_uow)
    token = _token(user, uuid.uuid4().hex)
    with new_uow().for_write() as uow:
        uow.refresh_tokens.add(token)
        uow.commit()
    with new_uow().for_write() as uow:
        record = uow.refresh_tokens.get_for_update(token.jti)
        assert record is not None
        assert not record.is_spent
        record.use(T0 + timedelta(minutes=5))
        uow.commit()
    with new_uow().for_write() as uow:
        record = uow.refresh_tokens.get_for_update(token.jti)
        assert record is not None
        assert record.used_at == T0 + timedelta(minutes=5)
        assert record.is_spent
        assert not record.is_revoked


# Idempotency keys ---------------------------------------------------------------------------


def _record(customer: int, key: str, order_id: int, at: datetime = T0) -> IdempotencyRecord:
    return IdempotencyRecord(
        customer_id=customer,
        key=key,
        fingerprint="f" * 64,
        created_at=at,
        order_id=order_id,
        response={"id": order_id, "status": "placed", "total": "12.50"},
    )


def test_a_key_is_claimed_once_per_customer(new_uow: UowFactory) -> None:
    alice, bob = _add_user(new_uow), _add_user(new_uow)
    with new_uow().for_write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0) is True
        assert uow.idempotency.claim(alice, "tap-1", T0) is False
        assert uow.idempotency.claim(bob, "tap-1", T0) is True
        assert uow.idempotency.claim(alice, "tap-2", T0) is True
        uow.commit()
    with new_uow().for_write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0) is False


def test_a_claimed_key_has_no_answer_until_one_is_saved(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice = _add_user(new_uow)
    order_id = _add_order(new_uow, alice, pid)
    with new_uow().for_write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)
        assert uow.idempotency.get(alice, "tap-1") is None
        uow.idempotency.save(_record(alice, "tap-1", order_id))
        uow.commit()
    with new_uow() as uow:
        record = uow.idempotency.get(alice, "tap-1")
        assert record is not None
        assert (record.customer_id, record.key, record.order_id) == (alice, "tap-1", order_id)
        assert record.fingerprint == "f" * 64
        assert record.created_at == T0
        assert record.response == {"id": order_id, "status": "placed", "total": "12.50"}
        assert uow.idempotency.get(alice + 1, "tap-1") is None
        assert uow.idempotency.get(alice, "tap-2") is None


def test_a_claim_rolled_back_frees_the_key(new_uow: UowFactory) -> None:
    alice = _add_user(new_uow)
    with new_uow().for_write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)
    with new_uow().for_write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)


def test_purging_removes_only_keys_older_than_the_cutoff(new_uow: UowFactory) -> None:
    [pid] = _add_products(new_uow, ("A", 10))
    alice = _add_user(new_uow)
    old_order, new_order = _add_order(new_uow, alice, pid), _add_order(new_uow, alice, pid)
    with new_uow().for_write() as uow:
        for key, order_id, at in [
            ("old", old_order, T0 - timedelta(hours=25)),
            ("new", new_order, T0 - timedelta(hours=1)),
        ]:
            assert uow.idempotency.claim(alice, key, at)
            uow.idempotency.save(_record(alice, key, order_id, at))
        uow.commit()
    with new_uow().for_write() as uow:
        assert uow.idempotency.purge_older_than(T0 - timedelta(hours=24)) == 1
        uow.commit()
    with new_uow().for_write() as uow:
        assert uow.idempotency.get(alice, "old") is None
        assert uow.idempotency.get(alice, "new") is not None
        assert uow.idempotency.claim(alice, "old", T0) is True
        assert uow.idempotency.claim(alice, "new", T0) is False
