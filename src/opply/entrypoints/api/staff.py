"""Staff order endpoints: every customer's orders, and their life (ship, deliver, cancel)."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import PageRequest
from opply.application.orders import (
    GetInvoiceAsStaff,
    GetOrderAsStaff,
    ListAllOrders,
    MoveOrder,
    OrderAction,
)
from opply.domain.errors import (
    InvalidStatusTransition,
    InvoiceNotIssued,
    OrderNotCancellable,
    OrderNotFound,
)
from opply.domain.model import OrderStatus
from opply.entrypoints.api.conditional import conditional
from opply.entrypoints.api.operations import answers_with_headers, operation
from opply.entrypoints.api.orders import (
    CANCELLED_ORDER_EXAMPLE,
    INVOICE_RESPONSE,
    ORDER_EXAMPLE,
    invoice_response,
)
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    ORDER_ID,
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

CUSTOMER_EXAMPLE = {"id": 12, "username": "alice"}
STAFF_ORDER_EXAMPLE = {**ORDER_EXAMPLE, "customer": CUSTOMER_EXAMPLE}
SHIPPED_EXAMPLE = {
    **STAFF_ORDER_EXAMPLE,
    "status": "shipped",
    "shipped_at": "2026-11-25T09:00:00Z",
    "invoice_number": "INV-2026-000042",
}
DELIVERED_EXAMPLE = {
    **SHIPPED_EXAMPLE,
    "status": "delivered",
    "delivered_at": "2026-11-26T14:30:00Z",
}
STAFF_CANCELLED_EXAMPLE = {**CANCELLED_ORDER_EXAMPLE, "customer": CUSTOMER_EXAMPLE}

list_all_orders: ListAllOrders = Provide[Container.list_all_orders]
get_order_as_staff: GetOrderAsStaff = Provide[Container.get_order_as_staff]
move_order: MoveOrder = Provide[Container.move_order]
get_invoice_as_staff: GetInvoiceAsStaff = Provide[Container.get_invoice_as_staff]


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


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/", parameters=ORDER_ID)
class StaffOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=STAFF_ORDER_EXAMPLE)
    @operation("getAnyOrder", OrderNotFound)
    def get(self, order_id: int) -> Any:
        """Get any customer's order (staff)

        The order as its customer sees it, with `customer` (id and username)."""
        return get_order_as_staff(order_id)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/ship/", parameters=ORDER_ID)
class ShipOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=SHIPPED_EXAMPLE)
    @operation(
        "shipOrder",
        OrderNotFound,
        InvalidStatusTransition,
        links={
            200: {
                target: {"order_id": "$response.body#/id"}
                for target in ("deliverOrder", "getAnyInvoice", "getInvoice")
            }
        },
    )
    def post(self, order_id: int) -> Any:
        """Ship an order: placed -> shipped, and invoiced (staff)

        Sets `shipped_at` and gives the order its `invoice_number`: the next of the year,
        with no gaps. Any other status is a 409 `invalid_status_transition` and changes
        nothing."""
        return move_order(order_id, OrderAction.SHIP)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/deliver/", parameters=ORDER_ID)
class DeliverOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=DELIVERED_EXAMPLE)
    @operation("deliverOrder", OrderNotFound, InvalidStatusTransition)
    def post(self, order_id: int) -> Any:
        """Deliver an order: shipped -> delivered (staff)

        Sets `delivered_at`. Any other status is a 409 `invalid_status_transition` and changes
        nothing."""
        return move_order(order_id, OrderAction.DELIVER)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/cancel/", parameters=ORDER_ID)
class CancelAnyOrder(MethodView):
    @staff_only
    @blp.response(200, StaffOrderSchema, example=STAFF_CANCELLED_EXAMPLE)
    @operation("cancelAnyOrder", OrderNotFound, OrderNotCancellable)
    def post(self, order_id: int) -> Any:
        """Cancel any customer's order: placed -> cancelled, stock back (staff)

        Sets `cancelled_at`; every line's units go back into stock. Any other status is a 409
        `order_not_cancellable` and changes nothing."""
        return move_order(order_id, OrderAction.CANCEL)


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/invoice/", parameters=ORDER_ID)
class StaffOrderInvoice(MethodView):
    @conditional(blp)
    @blp.response(200, description=INVOICE_RESPONSE["description"])
    @blp.doc(responses={"200": INVOICE_RESPONSE})
    @answers_with_headers("Content-Disposition", status=200)
    @answers_with_headers("Content-Disposition", status=304)
    @operation("getAnyInvoice", OrderNotFound, InvoiceNotIssued)
    @staff_only
    def get(self, order_id: int) -> Any:
        """Get any shipped order's invoice (PDF, staff)

        Before the order ships, a 409 `invoice_not_issued`. Carries an `ETag`."""
        return invoice_response(get_invoice_as_staff(order_id))
