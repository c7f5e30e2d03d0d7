"""Staff order endpoints: every customer's orders, and their life (ship, deliver, cancel)."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import PageRequest
from opply.application.orders import GetOrderAsStaff, ListAllOrders, MoveOrder, OrderAction
from opply.domain.errors import InvalidStatusTransition, OrderNotCancellable, OrderNotFound
from opply.domain.model import OrderStatus
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.orders import ORDER_EXAMPLE
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    StaffOrderPageSchema,
    StaffOrderQuerySchema,
    StaffOrderSchema,
)
from opply.entrypoints.api.security import staff_only
from opply.entrypoints.container import Container

blp = Blueprint(
    "staff",
    __name__,
    url_prefix="/api/v1/staff/orders",
    description="Every customer's orders, for staff",
)

STAFF_ORDER_EXAMPLE = {**ORDER_EXAMPLE, "customer": {"id": 12, "username": "alice"}}

list_all_orders: ListAllOrders = Provide[Container.list_all_orders]
get_order_as_staff: GetOrderAsStaff = Provide[Container.get_order_as_staff]
move_order: MoveOrder = Provide[Container.move_order]


@blp.route("/")
class StaffOrders(MethodView):
    @staff_only
    @blp.arguments(StaffOrderQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, StaffOrderPageSchema)
    @operation("listAllOrders")
    def get(
        self, page: int, page_size: int, status: str | None = None, customer: str | None = None
    ) -> Any:
        """List every customer's orders, newest first (staff)

        Filter with `status` and `customer` (a username)."""
        req = PageRequest(page=page, page_size=page_size)
        found = list_all_orders(customer, OrderStatus(status) if status else None, req)
        return page_envelope(found, req, {"status": status, "customer": customer})


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/")
class StaffOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=STAFF_ORDER_EXAMPLE)
    @operation("getAnyOrder", OrderNotFound)
    def get(self, order_id: int) -> Any:
        """Get any customer's order (staff)"""
        return get_order_as_staff(order_id)


def _moved(status: str, at: str) -> dict[str, Any]:
    return {**STAFF_ORDER_EXAMPLE, "status": status, at: "2026-11-25T09:00:00Z"}


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/ship/")
class ShipOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=_moved("shipped", "shipped_at"))
    @operation(
        "shipOrder",
        OrderNotFound,
        InvalidStatusTransition,
        links={200: {"deliverOrder": {"order_id": "$response.body#/id"}}},
    )
    def post(self, order_id: int) -> Any:
        """Ship an order: placed -> shipped (staff)"""
        return move_order(order_id, OrderAction.SHIP)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/deliver/")
class DeliverOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=_moved("delivered", "delivered_at"))
    @operation("deliverOrder", OrderNotFound, InvalidStatusTransition)
    def post(self, order_id: int) -> Any:
        """Deliver an order: shipped -> delivered (staff)"""
        return move_order(order_id, OrderAction.DELIVER)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/cancel/")
class CancelAnyOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=_moved("cancelled", "cancelled_at"))
    @operation("cancelAnyOrder", OrderNotFound, OrderNotCancellable)
    def post(self, order_id: int) -> Any:
        """Cancel any customer's order: placed -> cancelled, stock back (staff)"""
        return move_order(order_id, OrderAction.CANCEL)
