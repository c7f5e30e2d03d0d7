"""Random sequences of restock, order, retry, ship, deliver and cancel, checked against a plain
model.

The model is dicts of numbers; the system is the real use cases on the in-memory unit of work.
After every step the stock must match the model, never go below zero, and account for every unit
(initial + restocked = on the shelf + in orders not cancelled); stock moves only when an order is
placed or cancelled, never when it is shipped or delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from opply.adapters.memory import FixedClock, InMemoryStore, InMemoryUnitOfWork
from opply.application.dto import NewProduct, PageRequest, PlaceOrderCommand, ProductFilter
from opply.application.orders import (
    CancelMyOrder,
    ListMyOrders,
    MoveOrder,
    OrderAction,
    PlaceOrder,
)
from opply.application.products import CreateProduct, ListProducts, RestockProduct
from opply.domain.errors import (
    IdempotencyKeyReused,
    InvalidStatusTransition,
    OrderNotCancellable,
    OrderNotFound,
    OutOfStock,
    Shortage,
    UnknownProducts,
)
from opply.domain.model import LineRequest, Order, OrderStatus, User

CUSTOMERS = (1, 2, 3)
UNKNOWN_IDS = (90, 91)
PRICES = ("0.10", "0.99", "3.33", "12.50")
VAT_RATES = ("0.00", "5.50", "7.00", "19.00")
EVERYTHING = PageRequest(page=1, page_size=10_000)


def command(customer: int, lines: Iterable[tuple[int, int]], key: str | None) -> PlaceOrderCommand:
    requested = [LineRequest(product_id=p, quantity=q) for p, q in lines]
    return PlaceOrderCommand(customer_id=customer, lines=requested, idempotency_key=key)


@dataclass
class ModelOrder:
    customer: int
    lines: dict[int, int]
    status: OrderStatus = OrderStatus.PLACED
    cancellations: int = 0

    @property
    def cancelled(self) -> bool:
        return self.status is OrderStatus.CANCELLED


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = InMemoryStore()
        self.uow = InMemoryUnitOfWork(self.store)
        self.clock = FixedClock()
        self.place = PlaceOrder(self.uow, self.clock, "EUR")
        with self.uow.write() as uow:
            for customer in CUSTOMERS:
                uow.users.add(User(username=f"customer{customer}", password_hash="-"))
            uow.commit()
        self.cancel_order = CancelMyOrder(self.uow, self.clock)
        self.move_order = MoveOrder(self.uow, self.clock)
        self.restock_product = RestockProduct(self.uow)
        # The model.
        self.initial: dict[int, int] = {}
        self.restocked: dict[int, int] = {}
        self.stock: dict[int, int] = {}
        self.prices: dict[int, Decimal] = {}
        self.orders: dict[int, ModelOrder] = {}
        self.keys: dict[tuple[int, str], tuple[int, dict[int, int]]] = {}
        self.next_key = 0

    @initialize(
        products=st.lists(
            st.tuples(st.integers(0, 20), st.sampled_from(PRICES), st.sampled_from(VAT_RATES)),
            min_size=2,
            max_size=4,
        )
    )
    def create_products(self, products: list[tuple[int, str, str]]) -> None:
        create = CreateProduct(self.uow)
        for i, (stock, price, vat) in enumerate(products):
            view = create(
                NewProduct(
                    name=f"Product {i}",
                    price=Decimal(price),
                    vat_rate=Decimal(vat),
                    quantity_in_stock=stock,
                )
            )
            self.initial[view.id] = stock
            self.restocked[view.id] = 0
            self.stock[view.id] = stock
            self.prices[view.id] = Decimal(price)

    # --- rules -----------------------------------------------------------------------------------

    @rule(data=st.data(), quantity=st.integers(1, 15))
    def restock(self, data: st.DataObject, quantity: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.stock)), label="product")
        view = self.restock_product(pid, quantity)
        self.restocked[pid] += quantity
        self.stock[pid] += quantity
        assert view.quantity_in_stock == self.stock[pid]

    @rule(
        data=st.data(),
        customer=st.sampled_from(CUSTOMERS),
        with_key=st.booleans(),
    )
    def place_order(self, data: st.DataObject, customer: int, with_key: bool) -> None:
        ids = data.draw(
            st.lists(
                st.sampled_from(sorted(self.stock) + list(UNKNOWN_IDS)),
                min_size=1,
                max_size=4,
                unique=True,
            ),
            label="products",
        )
        wanted = {pid: data.draw(st.integers(1, 12), label=f"quantity of {pid}") for pid in ids}
        key = None
        if with_key:
            key = f"key-{self.next_key}"
            self.next_key += 1
        cmd = command(customer, wanted.items(), key)
        before = dict(self.stock)

        unknown = sorted(p for p in wanted if p not in self.stock)
        short = {
            Shortage(product_id=p, requested=q, available=self.stock[p])
            for p, q in wanted.items()
            if p in self.stock and q > self.stock[p]
        }
        if unknown:
            with pytest.raises(UnknownProducts) as caught:
                self.place(cmd)
            assert list(caught.value.product_ids) == unknown
        elif short:
            with pytest.raises(OutOfStock) as caught_short:
                self.place(cmd)
            assert set(caught_short.value.shortages) == short
        else:
            placed = self.place(cmd)
            assert not placed.replayed
            assert placed.order_id not in self.orders
            assert {ln.product_id: ln.quantity for ln in placed.order.lines} == wanted
            self.orders[placed.order_id] = ModelOrder(customer, wanted)
            for p, q in wanted.items():
                self.stock[p] -= q
            if key is not None:
                self.keys[(customer, key)] = (placed.order_id, wanted)
            return
        assert self.current_stock() == before  # a refused order changes nothing

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def retry_with_the_same_key(self, data: st.DataObject) -> None:
        customer, key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        order_id, wanted = self.keys[(customer, key)]
        # A client may send the lines in another order; it is still the same request.
        shuffled = data.draw(st.permutations(sorted(wanted.items())), label="line order")
        before = self.current_stock()
        placed = self.place(command(customer, shuffled, key))
        assert placed.replayed
        assert placed.order_id == order_id
        assert self.current_stock() == before  # a replay never changes stock

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), extra=st.integers(1, 3))
    def reuse_a_key_with_another_body(self, data: st.DataObject, extra: int) -> None:
        customer, key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        _, wanted = self.keys[(customer, key)]
        changed = {p: q + extra for p, q in wanted.items()}
        before = self.current_stock()
        with pytest.raises(IdempotencyKeyReused):
            self.place(command(customer, changed.items(), key))
        assert self.current_stock() == before

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), as_owner=st.booleans())
    def cancel(self, data: st.DataObject, as_owner: bool) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)), label="order")
        order = self.orders[order_id]
        caller = order.customer if as_owner else next(c for c in CUSTOMERS if c != order.customer)
        before = self.current_stock()
        if not as_owner:
            with pytest.raises(OrderNotFound):
                self.cancel_order(caller, order_id)
        elif order.status is not OrderStatus.PLACED:
            with pytest.raises(OrderNotCancellable):
                self.cancel_order(caller, order_id)
        else:
            view = self.cancel_order(caller, order_id)
            assert view.status == "cancelled"
            order.status = OrderStatus.CANCELLED
            order.cancellations += 1
            for p, q in order.lines.items():
                self.stock[p] += q
            return
        assert self.current_stock() == before

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), action=st.sampled_from([OrderAction.SHIP, OrderAction.DELIVER]))
    def staff_move_an_order_on(self, data: st.DataObject, action: OrderAction) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)), label="order")
        order = self.orders[order_id]
        before = self.current_stock()
        allowed = {
            OrderAction.SHIP: (OrderStatus.PLACED, OrderStatus.SHIPPED),
            OrderAction.DELIVER: (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
        }
        source, target = allowed[action]
        if order.status is source:
            view = self.move_order(order_id, action)
            assert view.status is target
            order.status = target
        else:
            with pytest.raises(InvalidStatusTransition):
                self.move_order(order_id, action)
        assert self.current_stock() == before  # shipping and delivering never move stock

    @rule(customer=st.sampled_from(CUSTOMERS))
    def a_customer_lists_their_orders(self, customer: int) -> None:
        page = ListMyOrders(self.uow)(customer, None, EVERYTHING)
        mine = {i: o for i, o in self.orders.items() if o.customer == customer}
        assert page.total == len(mine)
        assert {o.id: o.status for o in page.items} == {i: o.status for i, o in mine.items()}

    @rule()
    def someone_browses_the_catalogue(self) -> None:
        page = ListProducts(self.uow)(ProductFilter(), EVERYTHING)
        assert {p.id: p.quantity_in_stock for p in page.items} == self.stock

    @rule(minutes=st.integers(0, 5))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    # --- invariants ------------------------------------------------------------------------------

    # The invariants read the committed tables directly: cheap enough to check after every
    # step, and exactly what the next transaction would see.

    def current_stock(self) -> dict[int, int]:
        return {pid: p.quantity_in_stock for pid, p in self.store.tables.products.items()}

    def all_orders(self) -> dict[int, Order]:
        return dict(self.store.tables.orders)

    @invariant()
    def stock_never_goes_below_zero(self) -> None:
        assert all(q >= 0 for q in self.current_stock().values())

    @invariant()
    def stock_matches_the_model(self) -> None:
        assert self.current_stock() == self.stock

    @invariant()
    def every_unit_is_on_the_shelf_or_in_a_placed_order(self) -> None:
        in_orders = dict.fromkeys(self.stock, 0)
        for order in self.all_orders().values():
            if order.status is not OrderStatus.CANCELLED:
                for line in order.lines:
                    in_orders[line.product_id] += line.quantity
        shelf = self.current_stock()
        for pid in self.stock:
            assert self.initial[pid] + self.restocked[pid] == shelf[pid] + in_orders[pid]

    @invariant()
    def orders_match_the_model_and_totals_add_up(self) -> None:
        stored = self.all_orders()
        assert set(stored) == set(self.orders)
        for order_id, order in stored.items():
            model = self.orders[order_id]
            assert order.customer_id == model.customer
            assert order.status is model.status
            lines = order.lines
            assert {ln.product_id: ln.quantity for ln in lines} == model.lines
            assert all(ln.unit_price == self.prices[ln.product_id] for ln in lines)
            amounts = order.amounts
            assert amounts.net == sum((ln.unit_price * ln.quantity for ln in lines), Decimal(0))
            assert amounts.total == amounts.net + amounts.vat == order.total

    @invariant()
    def no_order_is_cancelled_twice(self) -> None:
        assert all(order.cancellations <= 1 for order in self.orders.values())


StockMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_stock_stays_consistent_under_random_orders_restocks_and_cancels = StockMachine.TestCase
