"""Order endpoints: a customer places, lists, reads and cancels their own orders."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView

from opply.application.dto import PageRequest, PlaceOrderCommand
from opply.application.orders import CancelMyOrder, GetMyOrder, ListMyOrders, PlaceOrder
from opply.domain.model import LineRequest, OrderStatus
from opply.entrypoints.api.conditional import ConditionalBlueprint
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.problems import PROBLEM_MIMETYPE, ProblemSchema
from opply.entrypoints.api.schemas import (
    MAX_ID,
    IdempotencyHeaderSchema,
    OrderCreateSchema,
    OrderPageSchema,
    OrderQuerySchema,
    OrderSchema,
)
from opply.entrypoints.api.security import BEARER_SECURITY, authenticated, current_principal
from opply.entrypoints.container import Container

blp = ConditionalBlueprint(
    "orders", __name__, url_prefix="/api/v1/orders", description="Your orders"
)

ORDER_EXAMPLE = {
    "id": 31,
    "status": "placed",
    "created_at": "2026-11-24T10:15:00+00:00",
    "currency": "EUR",
    "lines": [
        {
            "product_id": 7,
            "product_name": "Oat flour 25kg",
            "unit_price": "12.50",
            "quantity": 2,
            "line_total": "25.00",
        }
    ],
    "total": "25.00",
}
OUT_OF_STOCK_EXAMPLE = {
    "type": "https://opply.example/problems/out-of-stock",
    "title": "Not enough stock",
    "status": 409,
    "detail": "Product 7 has 2 in stock, 5 requested",
    "code": "out_of_stock",
    "errors": [{"product_id": 7, "requested": 5, "available": 2}],
}


def _customer_errors(func: Any) -> Any:
    func = blp.alt_response(401, response="UNAUTHORIZED", description="No or invalid token")(func)
    return blp.doc(security=BEARER_SECURITY)(func)


@blp.route("/")
class Orders(MethodView):
    @authenticated  # before parsing: no body details for the unauthorised
    # Schema instances, not classes: from a class, webargs builds a new schema (deep-copying
    # its fields) for every request. Loading keeps no state in the schema, so one is shared.
    @blp.arguments(OrderQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, OrderPageSchema)
    @_customer_errors
    @inject
    def get(
        self,
        page: int,
        page_size: int,
        status: str | None = None,
        list_orders: ListMyOrders = Provide[Container.list_my_orders],
    ) -> Any:
        """List your orders, newest first

        Never shows another customer's orders. Filter with `status`."""
        req = PageRequest(page, page_size)
        found = list_orders(
            current_principal().user_id, OrderStatus(status) if status else None, req
        )
        return page_envelope(found, req, {"status": status})

    @authenticated  # before parsing: no body details for the unauthorised
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(
        OrderCreateSchema(),
        example={"lines": [{"product_id": 7, "quantity": 2}, {"product_id": 9, "quantity": 1}]},
    )
    @blp.response(201, OrderSchema, example=ORDER_EXAMPLE)
    @blp.alt_response(
        422,
        schema=ProblemSchema,
        content_type=PROBLEM_MIMETYPE,
        description="Invalid body, unknown product (`unknown_product`), repeated product, or "
        "Idempotency-Key reused with another body (`idempotency_key_reused`)",
    )
    @blp.alt_response(
        409,
        schema=ProblemSchema,
        content_type=PROBLEM_MIMETYPE,
        example=OUT_OF_STOCK_EXAMPLE,
        description="Not enough stock (`out_of_stock`, each short line in `errors`), or the "
        "same Idempotency-Key is still being processed (`request_in_progress`)",
    )
    @_customer_errors
    @inject
    def post(
        self,
        body: dict[str, Any],
        idempotency_key: str | None = None,
        place_order: PlaceOrder = Provide[Container.place_order],
    ) -> Any:
        """Place an order: all lines or nothing

        Stock is taken for every line, or for none. Unknown products are a 422
        `unknown_product`; a repeated product is a 422. With an `Idempotency-Key`, a retry
        returns the first answer (header `Idempotent-Replayed: true`) and takes no more stock."""
        placed = place_order(
            PlaceOrderCommand(
                customer_id=current_principal().user_id,
                lines=[LineRequest(ln["product_id"], ln["quantity"]) for ln in body["lines"]],
                idempotency_key=idempotency_key,
            )
        )
        headers = {"Location": f"/api/v1/orders/{placed.order.id}/"}
        if placed.replayed:
            headers["Idempotent-Replayed"] = "true"
        return placed.order, 201, headers


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/")
class OrderDetail(MethodView):
    @blp.etag
    @blp.response(200, OrderSchema, example=ORDER_EXAMPLE)
    @blp.alt_response(404, response="NOT_FOUND", description="No such order of yours")
    @_customer_errors
    @authenticated
    @inject
    def get(self, order_id: int, get_order: GetMyOrder = Provide[Container.get_my_order]) -> Any:
        """Get one of your orders

        Another customer's order is a 404, exactly like a missing one."""
        return get_order(current_principal().user_id, order_id)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/cancel/")
class CancelOrder(MethodView):
    @blp.response(200, OrderSchema, example={**ORDER_EXAMPLE, "status": "cancelled"})
    @blp.alt_response(404, response="NOT_FOUND", description="No such order of yours")
    @blp.alt_response(409, response="CONFLICT", description="Not `placed` any more")
    @_customer_errors
    @authenticated
    @inject
    def post(
        self, order_id: int, cancel: CancelMyOrder = Provide[Container.cancel_my_order]
    ) -> Any:
        """Cancel one of your orders

        Only while `placed`; every line's units go back into stock."""
        return cancel(current_principal().user_id, order_id)
