"""Data for the contract tests, written through a write unit of work like any use case's."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from opply.application.unit_of_work import UnitOfWork
from opply.domain.model import Order, OrderLine, OrderStatus, Product, User, default_sku

T0 = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
_seq = itertools.count(1)


def tag() -> str:
    """A word no other test's names contain."""
    return f"zq{uuid.uuid4().hex[:8]}"


def add_products(uow: UnitOfWork, *specs: tuple[str, int], price: str = "2.50") -> list[int]:
    made = [
        Product(name=name, price=Decimal(price), quantity_in_stock=stock) for name, stock in specs
    ]
    with uow.write() as tx:
        for product in made:
            tx.products.add(product)
        tx.commit()
    return [p.id for p in made if p.id is not None]


def add_user(uow: UnitOfWork, username: str | None = None, *, staff: bool = False) -> int:
    user = User(username=username or f"u{next(_seq)}-{tag()}", password_hash="hash", is_staff=staff)
    with uow.write() as tx:
        tx.users.add(user)
        tx.commit()
    assert user.id is not None
    return user.id


def order_line(
    pid: int,
    quantity: int,
    *,
    price: str = "12.50",
    name: str | None = None,
    vat: str = "0.00",
    sku: str | None = None,
    unit: str = "unit",
) -> OrderLine:
    return OrderLine(
        product_id=pid,
        sku=sku or default_sku(pid),
        product_name=name or f"Product {pid} then",
        unit=unit,
        unit_price=Decimal(price),
        vat_rate=Decimal(vat),
        quantity=quantity,
    )


def add_order(
    uow: UnitOfWork,
    customer_id: int,
    *products: int,
    at: datetime = T0,
    quantity: int = 1,
    status: OrderStatus = OrderStatus.PLACED,
    price: str = "12.50",
) -> int:
    """An order of ``quantity`` units of each of ``products`` (stock is not taken)."""
    lines = [order_line(pid, quantity, price=price) for pid in products]
    order = Order(
        customer_id=customer_id, created_at=at, currency="EUR", lines=lines, status=status
    )
    with uow.write() as tx:
        tx.orders.add(order)
        tx.commit()
    assert order.id is not None
    return order.id
