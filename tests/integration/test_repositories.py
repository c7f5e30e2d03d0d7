"""Contract tests of the write side: the in-memory repositories (the unit tests' doubles) and the
SQL ones behave alike. Every test runs three times: in memory, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from opply.application.dto import PageRequest, ProductFilter
from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import (
    IdempotencyRecord,
    Order,
    OrderStatus,
    Product,
    RefreshToken,
    User,
)
from tests.integration.contract import add_order, add_products, add_user, order_line

T0 = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


# Products -----------------------------------------------------------------------------------


def test_an_added_product_gets_an_id_and_is_found_for_update(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Oat flour 25kg", 40))
    with contract_uow.write() as uow:
        product = uow.products.get_for_update([pid])[pid]
        assert (product.id, product.name, product.price, product.quantity_in_stock) == (
            pid,
            "Oat flour 25kg",
            Decimal("2.50"),
            40,
        )


def test_get_for_update_returns_only_the_products_that_exist_keyed_by_id(
    contract_uow: UnitOfWork,
) -> None:
    a, b = add_products(contract_uow, ("A", 1), ("B", 2))
    with contract_uow.write() as uow:
        found = uow.products.get_for_update([b, 987_654, a])
        assert sorted(found) == sorted([a, b])
        assert found[a].name == "A"
        assert found[b].quantity_in_stock == 2
        assert uow.products.get_for_update([]) == {}


def test_stock_taken_through_get_for_update_is_saved_on_commit(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("Rye", 5))
    with contract_uow.write() as uow:
        uow.products.get_for_update([pid])[pid].take(3)
        uow.commit()
    with contract_uow.read() as reads:
        view = reads.product(pid)
    assert view is not None
    assert view.quantity_in_stock == 2


def test_a_staff_edit_is_saved_on_commit(contract_uow: UnitOfWork) -> None:
    a, b = add_products(contract_uow, ("A", 1), ("B", 2))
    with contract_uow.write() as uow:
        found = uow.products.get_for_update([a, b])
        found[a].update(name="Alpha", price=Decimal("9.99"))
        found[b].take(2)
        uow.commit()
    with contract_uow.read() as reads:
        alpha, bravo = reads.product(a), reads.product(b)
    assert alpha is not None
    assert bravo is not None
    assert (alpha.name, alpha.price, alpha.quantity_in_stock) == ("Alpha", Decimal("9.99"), 1)
    assert (bravo.name, bravo.quantity_in_stock) == ("B", 0)


# Orders -------------------------------------------------------------------------------------


def test_an_added_order_is_found_for_update_with_its_lines(contract_uow: UnitOfWork) -> None:
    a, b = add_products(contract_uow, ("A", 10), ("B", 10))
    customer = add_user(contract_uow)
    with contract_uow.write() as uow:
        order = Order(
            customer_id=customer,
            created_at=T0,
            currency="EUR",
            lines=[
                order_line(b, 1, name="B then", price="3.10", vat="19.00", sku="B-1", unit="kg"),
                order_line(a, 2, name="A then", price="12.50", vat="7.00", sku="A-1", unit="bag"),
            ],
        )
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    with contract_uow.write() as uow:
        found = uow.orders.get_for_update(order.id, customer_id=customer)
        assert found is not None
        assert (found.id, found.status, found.created_at, found.currency) == (
            order.id,
            OrderStatus.PLACED,
            T0,
            "EUR",
        )
        assert sorted(found.lines, key=lambda line: line.product_id) == [
            order_line(a, 2, name="A then", price="12.50", vat="7.00", sku="A-1", unit="bag"),
            order_line(b, 1, name="B then", price="3.10", vat="19.00", sku="B-1", unit="kg"),
        ]
        # 25.00 + 1.75 VAT, and 3.10 + 0.589 -> 0.59 VAT
        assert found.total == Decimal("30.44")


def test_another_customers_order_is_not_there_for_them(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("A", 10))
    alice, bob = add_user(contract_uow), add_user(contract_uow)
    order_id = add_order(contract_uow, alice, pid)
    with contract_uow.write() as uow:
        assert uow.orders.get_for_update(order_id, customer_id=bob) is None
        assert uow.orders.get_for_update(987_654, customer_id=alice) is None
        assert uow.orders.get_for_update(987_654) is None
        anyones = uow.orders.get_for_update(order_id)  # staff: any customer's
        assert anyones is not None
        assert anyones.customer_id == alice


def test_a_cancelled_order_and_its_restocked_products_are_saved_together(
    contract_uow: UnitOfWork,
) -> None:
    a, b = add_products(contract_uow, ("A", 10), ("B", 10))
    alice = add_user(contract_uow)
    with contract_uow.write() as uow:
        products = uow.products.get_for_update([a, b])
        order = Order(
            customer_id=alice,
            created_at=T0,
            currency="EUR",
            lines=[
                order_line(a, 4, price="1.00"),
                order_line(b, 6, price="1.00"),
            ],
        )
        products[a].take(4)
        products[b].take(6)
        uow.orders.add(order)
        uow.commit()
    assert order.id is not None
    with contract_uow.write() as uow:
        found = uow.orders.get_for_update(order.id, customer_id=alice)
        assert found is not None
        found.cancel(uow.products.get_for_update(found.product_ids()), T0)
        uow.commit()
    with contract_uow.read() as reads:
        view = reads.order(order.id)
        stock = [reads.product(pid) for pid in (a, b)]
    assert view is not None
    assert view.status is OrderStatus.CANCELLED
    assert [p.quantity_in_stock for p in stock if p is not None] == [10, 10]


# Users --------------------------------------------------------------------------------------


def test_a_user_is_found_by_id_and_by_username(contract_uow: UnitOfWork) -> None:
    username = f"alice-{uuid.uuid4().hex[:8]}"
    user_id = add_user(contract_uow, username)
    with contract_uow.write() as uow:
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
        assert uow.users.get_by_username(f"nobody-{uuid.uuid4().hex}") is None
        assert uow.users.get(987_654) is None


def test_a_changed_user_is_saved_on_commit(contract_uow: UnitOfWork) -> None:
    user_id = add_user(contract_uow, "carol")
    with contract_uow.write() as uow:
        user = uow.users.get(user_id)
        assert user is not None
        user.deactivate()
        user.password_hash = "new-hash"
        uow.commit()
    with contract_uow.read() as reads:
        found = reads.credentials("carol")
    assert found is not None
    assert (found.is_active, found.password_hash) == (False, "new-hash")


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


def test_revoking_a_family_revokes_every_token_of_it_and_no_other(
    contract_uow: UnitOfWork,
) -> None:
    user = add_user(contract_uow)
    family, other = uuid.uuid4().hex, uuid.uuid4().hex
    earlier = T0 - timedelta(hours=1)
    tokens = [_token(user, family), _token(user, family), _token(user, other)]
    already = _token(user, family, revoked_at=earlier)
    with contract_uow.write() as uow:
        for token in [*tokens, already]:
            uow.refresh_tokens.add(token)
        uow.commit()
    with contract_uow.write() as uow:
        uow.refresh_tokens.revoke_family(family, T0)
        uow.commit()
    with contract_uow.write() as uow:
        revoked = {t.jti: uow.refresh_tokens.get_for_update(t.jti) for t in [*tokens, already]}
        at = {jti: r.revoked_at for jti, r in revoked.items() if r is not None}
        assert len(at) == 4
        assert at[tokens[0].jti] == at[tokens[1].jti] == T0
        assert at[tokens[2].jti] is None
        assert at[already.jti] == earlier  # the first revocation time is kept
        assert uow.refresh_tokens.get_for_update(uuid.uuid4().hex) is None


def test_a_used_refresh_token_reads_back_as_spent(contract_uow: UnitOfWork) -> None:
    user = add_user(contract_uow)
    token = _token(user, uuid.uuid4().hex)
    with contract_uow.write() as uow:
        uow.refresh_tokens.add(token)
        uow.commit()
    with contract_uow.write() as uow:
        record = uow.refresh_tokens.get_for_update(token.jti)
        assert record is not None
        assert not record.is_spent
        record.use(T0 + timedelta(minutes=5))
        uow.commit()
    with contract_uow.write() as uow:
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


def test_a_key_is_claimed_once_per_customer(contract_uow: UnitOfWork) -> None:
    alice, bob = add_user(contract_uow), add_user(contract_uow)
    with contract_uow.write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0) is True
        assert uow.idempotency.claim(alice, "tap-1", T0) is False
        assert uow.idempotency.claim(bob, "tap-1", T0) is True
        assert uow.idempotency.claim(alice, "tap-2", T0) is True
        uow.commit()
    with contract_uow.write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0) is False


def test_a_claimed_key_has_no_answer_until_one_is_saved(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("A", 10))
    alice = add_user(contract_uow)
    order_id = add_order(contract_uow, alice, pid)
    with contract_uow.write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)
        assert uow.idempotency.get(alice, "tap-1") is None
        uow.idempotency.save(_record(alice, "tap-1", order_id))
        uow.commit()
    with contract_uow.write() as uow:
        record = uow.idempotency.get(alice, "tap-1")
        assert record is not None
        assert (record.customer_id, record.key, record.order_id) == (alice, "tap-1", order_id)
        assert record.fingerprint == "f" * 64
        assert record.created_at == T0
        assert record.response == {"id": order_id, "status": "placed", "total": "12.50"}
        assert uow.idempotency.get(alice + 1, "tap-1") is None
        assert uow.idempotency.get(alice, "tap-2") is None


def test_a_claim_rolled_back_frees_the_key(contract_uow: UnitOfWork) -> None:
    alice = add_user(contract_uow)
    with contract_uow.write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)
    with contract_uow.write() as uow:
        assert uow.idempotency.claim(alice, "tap-1", T0)


def test_purging_removes_only_keys_older_than_the_cutoff(contract_uow: UnitOfWork) -> None:
    [pid] = add_products(contract_uow, ("A", 10))
    alice = add_user(contract_uow)
    old_order, new_order = add_order(contract_uow, alice, pid), add_order(contract_uow, alice, pid)
    with contract_uow.write() as uow:
        for key, order_id, at in [
            ("old", old_order, T0 - timedelta(hours=25)),
            ("new", new_order, T0 - timedelta(hours=1)),
        ]:
            assert uow.idempotency.claim(alice, key, at)
            uow.idempotency.save(_record(alice, key, order_id, at))
        uow.commit()
    with contract_uow.write() as uow:
        assert uow.idempotency.purge_older_than(T0 - timedelta(hours=24)) == 1
        uow.commit()
    with contract_uow.write() as uow:
        assert uow.idempotency.get(alice, "old") is None
        assert uow.idempotency.get(alice, "new") is not None
        assert uow.idempotency.claim(alice, "old", T0) is True
        assert uow.idempotency.claim(alice, "new", T0) is False


def test_users_products_and_orders_of_a_rolled_back_unit_of_work_are_not_there(
    contract_uow: UnitOfWork,
) -> None:
    with contract_uow.write() as uow:
        uow.users.add(User(username="ghost", password_hash="-"))
        uow.products.add(Product(name="Ghost", price=Decimal("1.00")))
    with contract_uow.read() as reads:
        assert reads.user("ghost") is None
        page = reads.product_page(ProductFilter(search="Ghost"), PageRequest())
    assert page.total == 0
