"""Order events are the order's: every transition records one, and the unit of work writes what
was recorded on commit, and nothing otherwise. On the in-memory adapters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from opply.adapters.memory import FixedClock, InMemoryStore, InMemoryUnitOfWork
from opply.application.dto import FEED_START, FeedPosition
from opply.application.events import ReadMyEvents, cursor_of, position_of
from opply.application.orders import CancelMyOrder, MoveOrder, OrderAction
from opply.domain.errors import InvalidCursor
from opply.domain.model import (
    EVENT_OF_STATUS,
    MOVES,
    LineRequest,
    Order,
    OrderPlaced,
    OrderStatus,
    Product,
)

AT = datetime(2026, 12, 2, 10, 15, tzinfo=UTC)


def _placed_order() -> Order:
    product = Product(id=1, name="Spelt", price=Decimal("4.20"), quantity_in_stock=100)
    return Order.place(
        customer_id=7,
        requests=[LineRequest(product_id=1, quantity=2)],
        products={1: product},
        created_at=AT,
        currency="EUR",
    )


def _arguments(method: Callable[..., Any]) -> dict[str, Any]:
    """Arguments for an Order method by parameter name; a new name must be taught here."""
    known = {"at": AT, "products": {}, "invoice_number": "INV-2026-000001"}
    names = list(inspect.signature(method).parameters)
    unknown = [name for name in names if name not in known]
    assert not unknown, f"teach this test the argument(s) {unknown} of {method.__name__}"
    return {name: known[name] for name in names}


def _reach(status: OrderStatus) -> Order:
    """A placed order moved along the shortest path to ``status``, its events forgotten."""
    order = _placed_order()
    path = {
        OrderStatus.PLACED: [],
        OrderStatus.SHIPPED: ["ship"],
        OrderStatus.DELIVERED: ["ship", "deliver"],
        OrderStatus.CANCELLED: ["cancel"],
    }[status]
    for name in path:
        method = getattr(order, name)
        method(**_arguments(method))
    order.events.clear()
    return order


def _public_methods(order: Order) -> dict[str, Callable[..., Any]]:
    return {
        name: getattr(order, name)
        for name, member in inspect.getmembers(Order)
        if not name.startswith("_")
        and inspect.isfunction(member)
        and not isinstance(inspect.getattr_static(Order, name), classmethod | staticmethod)
    }


def test_placing_an_order_records_that_it_was_placed() -> None:
    order = _placed_order()
    assert order.events == [OrderPlaced(occurred_at=AT)]


def test_every_status_change_any_method_of_an_order_makes_records_its_event() -> None:
    """Every public method of Order is tried from every status: whenever the status changes,
    exactly the event of the new status is recorded; whenever it does not, nothing is."""
    changes = set()
    for start in OrderStatus:
        for name in _public_methods(_reach(start)):
            order = _reach(start)
            method = getattr(order, name)
            try:
                method(**_arguments(method))
            except Exception:
                assert order.status is start
            if order.status is start:
                assert order.events == [], f"{name} from {start} changed nothing but recorded"
                continue
            changes.add((start, order.status))
            assert order.events == [EVENT_OF_STATUS[order.status](occurred_at=AT)], name
    every_move = {(start, end) for start, ends in MOVES.items() for end in ends}
    assert changes == every_move, "a move of the order's life that no method makes"


def test_every_status_has_its_event_type() -> None:
    assert {e.type for e in EVENT_OF_STATUS.values()} == {
        f"order.{status.value}" for status in OrderStatus
    }


# --- through the use cases: written on commit, once, with the order as it then stood ---------


def _events(store: InMemoryStore) -> list[tuple[str, int, OrderStatus]]:
    return [(e.type, e.order_id, e.order.status) for _, e in store.tables.events]


def test_each_use_case_that_moves_an_order_writes_its_event(
    store: InMemoryStore,
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    add_product: Callable[..., int],
    add_user: Callable[..., int],
    order_for: Callable[..., int],
) -> None:
    product, alice = add_product(stock=10), add_user()
    first = order_for(alice, [LineRequest(product_id=product, quantity=1)])
    second = order_for(alice, [LineRequest(product_id=product, quantity=1)])
    third = order_for(alice, [LineRequest(product_id=product, quantity=1)])
    move = MoveOrder(uow, clock)
    move(first, OrderAction.SHIP)
    move(first, OrderAction.DELIVER)
    move(second, OrderAction.CANCEL)
    CancelMyOrder(uow, clock)(alice, third)
    assert _events(store) == [
        ("order.placed", first, OrderStatus.PLACED),
        ("order.placed", second, OrderStatus.PLACED),
        ("order.placed", third, OrderStatus.PLACED),
        ("order.shipped", first, OrderStatus.SHIPPED),
        ("order.delivered", first, OrderStatus.DELIVERED),
        ("order.cancelled", second, OrderStatus.CANCELLED),
        ("order.cancelled", third, OrderStatus.CANCELLED),
    ]


def test_every_staff_action_reaches_a_status_with_an_event() -> None:
    reached = {
        OrderAction.SHIP: OrderStatus.SHIPPED,
        OrderAction.DELIVER: OrderStatus.DELIVERED,
        OrderAction.CANCEL: OrderStatus.CANCELLED,
    }
    assert set(reached) == set(OrderAction)
    assert set(reached.values()) == {end for ends in MOVES.values() for end in ends}


def test_a_unit_of_work_left_without_commit_writes_no_event(
    store: InMemoryStore, uow: InMemoryUnitOfWork, add_product: Callable[..., int]
) -> None:
    product_id = add_product(stock=10)
    with uow.write() as w:
        products = w.products.get_for_update({product_id})
        order = Order.place(
            customer_id=1,
            requests=[LineRequest(product_id=product_id, quantity=1)],
            products=products,
            created_at=AT,
            currency="EUR",
        )
        w.orders.add(order)
    assert store.tables.events == []


def test_a_refused_move_writes_no_event(
    store: InMemoryStore,
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    add_product: Callable[..., int],
    add_user: Callable[..., int],
    order_for: Callable[..., int],
) -> None:
    order_id = order_for(add_user(), [LineRequest(product_id=add_product(), quantity=1)])
    with pytest.raises(Exception, match="cannot"):
        MoveOrder(uow, clock)(order_id, OrderAction.DELIVER)
    assert [e[0] for e in _events(store)] == ["order.placed"]


# --- the feed's cursor ---------------------------------------------------------------------


def test_a_cursor_stands_for_its_position_and_nothing_else() -> None:
    for position in (FEED_START, FeedPosition(tx=123_456_789, id=42)):
        assert position_of(cursor_of(position)) == position
    for other in ("", "x", cursor_of(FeedPosition(tx=1, id=2)) + "=", "ZTEuMS4yLjM", "é" * 3):
        with pytest.raises(InvalidCursor):
            position_of(other)


def test_the_feed_reads_on_from_the_cursor_it_gave(
    uow: InMemoryUnitOfWork,
    add_product: Callable[..., int],
    add_user: Callable[..., int],
    order_for: Callable[..., int],
) -> None:
    product, alice, bob = add_product(stock=10), add_user(), add_user("bob")
    read = ReadMyEvents(uow)
    start = read(alice, None, 10)
    assert start.items == []
    order_for(bob, [LineRequest(product_id=product, quantity=1)])
    mine = [order_for(alice, [LineRequest(product_id=product, quantity=1)]) for _ in range(3)]
    first = read(alice, start.next_after, 2)
    rest = read(alice, first.next_after, 2)
    assert [e.order.id for e in [*first.items, *rest.items]] == mine
    idle = read(alice, rest.next_after, 2)
    assert idle.items == []
    assert idle.next_after == rest.next_after
