"""Plain data that crosses the application boundary (in: commands, out: views)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from opply.domain.model import (
    LineRequest,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    User,
    money,
)


@dataclass(frozen=True)
class ProductView:
    id: int
    name: str
    price: Decimal
    quantity_in_stock: int

    @classmethod
    def of(cls, product: Product) -> ProductView:
        assert product.id is not None
        return cls(product.id, product.name, product.price, product.quantity_in_stock)


@dataclass(frozen=True)
class OrderLineView:
    product_id: int
    product_name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


@dataclass(frozen=True)
class OrderView:
    id: int
    status: str
    created_at: datetime
    currency: str
    lines: tuple[OrderLineView, ...]
    total: Decimal

    @classmethod
    def of(cls, order: Order) -> OrderView:
        assert order.id is not None
        return cls.of_parts(order.id, order.status, order.created_at, order.currency, order.lines)

    @classmethod
    def of_parts(
        cls,
        order_id: int,
        status: OrderStatus,
        created_at: datetime,
        currency: str,
        lines: Iterable[OrderLine],
    ) -> OrderView:
        """The view of an order read as plain rows; totals by the domain's own rules."""
        views = tuple(
            OrderLineView(
                line.product_id, line.product_name, line.unit_price, line.quantity, line.line_total
            )
            for line in sorted(lines, key=lambda ln: ln.product_id)
        )
        total = money(sum((line.line_total for line in views), Decimal(0)))
        return cls(order_id, status.value, created_at, currency, views, total)

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe copy, kept with an Idempotency-Key so a retry gets this very answer."""
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "currency": self.currency,
            "lines": [
                {
                    "product_id": ln.product_id,
                    "product_name": ln.product_name,
                    "unit_price": str(ln.unit_price),
                    "quantity": ln.quantity,
                    "line_total": str(ln.line_total),
                }
                for ln in self.lines
            ],
            "total": str(self.total),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> OrderView:
        return cls(
            id=int(data["id"]),
            status=str(data["status"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            currency=str(data["currency"]),
            lines=tuple(
                OrderLineView(
                    int(ln["product_id"]),
                    str(ln["product_name"]),
                    Decimal(ln["unit_price"]),
                    int(ln["quantity"]),
                    Decimal(ln["line_total"]),
                )
                for ln in data["lines"]
            ),
            total=Decimal(data["total"]),
        )


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    is_staff: bool
    is_active: bool

    @classmethod
    def of(cls, user: User) -> UserView:
        assert user.id is not None
        return cls(user.id, user.username, user.is_staff, user.is_active)


@dataclass(frozen=True)
class StaffOrderView:
    """An order as staff see it: whose it is, as well as what it holds."""

    order: OrderView
    customer_id: int
    customer_username: str


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established from a valid access token of an active user."""

    user_id: int
    is_staff: bool


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True)
class PlaceOrderCommand:
    customer_id: int
    lines: Sequence[LineRequest]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderView
    replayed: bool = False
