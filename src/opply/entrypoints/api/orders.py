"""Order endpoints: a customer places, lists, reads and cancels their own orders."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import PageRequest, PlaceOrderCommand
from opply.application.orders import CancelMyOrder, GetMyOrder, ListMyOrders, PlaceOrder
from opply.domain.errors import (
    DuplicateProductLine,
    IdempotencyKeyReused,
    OrderNotCancellable,
    OrderNotFound,
    OutOfStock,
    RequestInProgress,
    UnknownProducts,
)
from opply.domain.model import LineRequest, OrderStatus
from opply.entrypoints.api.conditional import conditional
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    ORDER_ID,
    IdempotencyHeaderSchema,
    OrderCreateSchema,
    OrderPageSchema,
    OrderQuerySchema,
    OrderSchema,
)
from opply.entrypoints.api.security import authenticated, current_principal
from opply.entrypoints.container import Container

blp = Blueprint("orders", __name__, url_prefix="/api/v1/orders", description="Your orders")

ORDER_EXAMPLE: dict[str, Any] = {
    "id": 31,
    "status": "placed",
    "created_at": "2026-11-24T10:15:00Z",
    "shipped_at": None,
    "delivered_at": None,
    "cancelled_at": None,
    "currency": "EUR",
    "lines": [
        {
            "product_id": 7,
            "sku": "OAT-FL-25",
            "product_name": "Oat flour 25kg",
            "unit": "bag",
            "unit_price": "12.50",
            "vat_rate": "7.00",
            "quantity": 3,
            "line_net": "37.50",
            "line_vat": "2.63",
            "line_total": "40.13",
        }
    ],
    "subtotal": "37.50",
    "vat_total": "2.63",
    "total": "40.13",
}
CANCELLED_ORDER_EXAMPLE = {
    **ORDER_EXAMPLE,
    "status": "cancelled",
    "cancelled_at": "2026-11-24T10:20:00Z",
}

place_order: PlaceOrder = Provide[Container.place_order]
list_my_orders: ListMyOrders = Provide[Container.list_my_orders]
get_my_order: GetMyOrder = Provide[Container.get_my_order]
cancel_my_order: CancelMyOrder = Provide[Container.cancel_my_order]


@blp.route("/")
class Orders(MethodView):
    @authenticated  # before parsing: no body details for the unauthorised
    # Schema instances, not classes: from a class, webargs builds a new schema (deep-copying
    # its fields) for every request. Loading keeps no state in the schema, so one is shared.
    @blp.arguments(OrderQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, OrderPageSchema)
    @operation("listOrders")
    def get(self, page: int, page_size: int, status: str | None = None) -> Any:
        """List your orders, newest first

        Never shows another customer's orders. Filter with `status`."""
        req = PageRequest(page=page, page_size=page_size)
        found = list_my_orders(
            current_principal().user_id, OrderStatus(status) if status else None, req
        )
        return page_envelope(found, req, {"status": status})

    @authenticated  # before parsing: no body details for the unauthorised
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(
        OrderCreateSchema(),
        example={"lines": [{"product_id": 7, "quantity": 2}, {"product_id": 9, "quantity": 1}]},
    )
    @blp.response(
        201,
        OrderSchema,
        example=ORDER_EXAMPLE,
        headers={"Location": "Location", "Idempotent-Replayed": "Idempotent-Replayed"},
    )
    @operation(
        "placeOrder",
        OutOfStock,
        RequestInProgress,
        UnknownProducts,
        DuplicateProductLine,
        IdempotencyKeyReused,
        links={
            201: {
                target: {"order_id": "$response.body#/id"}
                for target in (
                    "getOrder",
                    "cancelOrder",
                    "getAnyOrder",
                    "shipOrder",
                    "deliverOrder",
                    "cancelAnyOrder",
                )
            }
        },
    )
    def post(self, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
        """Place an order: all lines or nothing

        Stock is taken for every line, or for none. Unknown products are a 422
        `unknown_product`; a repeated product is a 422. With an `Idempotency-Key`, a retry
        returns the first answer (header `Idempotent-Replayed: true`) and takes no more stock."""
        placed = place_order(
            PlaceOrderCommand(
                customer_id=current_principal().user_id,
                lines=[LineRequest(**line) for line in body["lines"]],
                idempotency_key=idempotency_key,
            )
        )
        headers = {"Location": f"/api/v1/orders/{placed.order_id}/"}
        if placed.replayed:
            headers["Idempotent-Replayed"] = "true"
        return placed.order, 201, headers


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/", parameters=ORDER_ID)
class OrderDetail(MethodView):
    @conditional(blp)
    @blp.response(200, OrderSchema, example=ORDER_EXAMPLE)
    @operation("getOrder", OrderNotFound)
    @authenticated
    def get(self, order_id: int) -> Any:
        """Get one of your orders

        Another customer's order is a 404, exactly like a missing one."""
        return get_my_order(current_principal().user_id, order_id)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/cancel/", parameters=ORDER_ID)
class CancelOrder(MethodView):
    @blp.response(200, OrderSchema, example=CANCELLED_ORDER_EXAMPLE)
    @operation("cancelOrder", OrderNotFound, OrderNotCancellable)
    @authenticated
    def post(self, order_id: int) -> Any:
        """Cancel one of your orders

        Only while `placed`; every line's units go back into stock."""
        return cancel_my_order(current_principal().user_id, order_id)
