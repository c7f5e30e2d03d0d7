"""Order endpoints: a customer places, reorders, lists, reads and cancels their own orders, and
fetches their invoices."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import Invoice, PageRequest, PlacedOrder, PlaceOrderCommand
from opply.application.orders import (
    CancelMyOrder,
    GetMyInvoice,
    GetMyOrder,
    ListMyOrders,
    PlaceOrder,
    Reorder,
)
from opply.domain.errors import (
    BelowMinimumQuantity,
    DuplicateProductLine,
    IdempotencyKeyReused,
    InvoiceNotIssued,
    NotACaseMultiple,
    OrderNotCancellable,
    OrderNotFound,
    OutOfStock,
    RequestInProgress,
    UnknownAddress,
    UnknownProducts,
)
from opply.domain.model import LineRequest, OrderStatus
from opply.entrypoints.api.conditional import conditional
from opply.entrypoints.api.operations import answers_with_headers, operation
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    ORDER_ID,
    IdempotencyHeaderSchema,
    OrderCreateSchema,
    OrderPageSchema,
    OrderQuerySchema,
    OrderSchema,
    ReorderSchema,
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
    "delivery_address": {
        "recipient": "Jane Baker",
        "company": "Baker & Co",
        "line1": "12 Mill Lane",
        "line2": "",
        "postal_code": "EC1A 1BB",
        "city": "London",
        "country": "GB",
        "phone": "+44 20 7946 0000",
    },
    "invoice_number": None,
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
reorder: Reorder = Provide[Container.reorder]
get_my_invoice: GetMyInvoice = Provide[Container.get_my_invoice]

# What placing an order can refuse, whichever way it is placed (a new order or a reorder).
PLACING_ERRORS = (
    OutOfStock,
    RequestInProgress,
    UnknownProducts,
    UnknownAddress,
    BelowMinimumQuantity,
    NotACaseMultiple,
    IdempotencyKeyReused,
)
ORDER_LINKS = {
    201: {
        target: {"order_id": "$response.body#/id"}
        for target in (
            "getOrder",
            "cancelOrder",
            "reorder",
            "getAnyOrder",
            "shipOrder",
            "deliverOrder",
            "cancelAnyOrder",
        )
    }
}


def placed_response(placed: PlacedOrder) -> Any:
    """201 with the order and its ``Location``; a replay says so."""
    headers = {"Location": f"/api/v1/orders/{placed.order_id}/"}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    return placed.order, 201, headers


INVOICE_RESPONSE = {
    "description": "The invoice, a PDF. It never changes once issued.",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}


def invoice_response(invoice: Invoice) -> Response:
    """The file, named after its number (the ETag and 304 are ``conditional``'s)."""
    return Response(
        invoice.content,
        mimetype=invoice.media_type,
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
    )


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
    @operation("placeOrder", *PLACING_ERRORS, DuplicateProductLine, links=ORDER_LINKS)
    def post(self, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
        """Place an order: all lines or nothing

        Stock is taken for every line, or for none. Unknown products are a 422
        `unknown_product`; a repeated product is a 422; a line below its product's
        `min_order_quantity` or not a multiple of its `case_size` a 422
        (`below_minimum_quantity`, `not_a_case_multiple`, every such line listed). The order
        goes to `address_id`, or to your default address. With an `Idempotency-Key`, a retry
        returns the first answer (header `Idempotent-Replayed: true`) and takes no more stock."""
        return placed_response(
            place_order(
                PlaceOrderCommand(
                    customer_id=current_principal().user_id,
                    lines=[LineRequest(**line) for line in body["lines"]],
                    idempotency_key=idempotency_key,
                    address_id=body.get("address_id"),
                )
            )
        )


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


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/reorder/", parameters=ORDER_ID)
class ReorderOrder(MethodView):
    @authenticated  # before parsing: no body details for the unauthorised
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(ReorderSchema(), required=False, example={"address_id": 3})
    @blp.response(
        201,
        OrderSchema,
        example=ORDER_EXAMPLE,
        headers={"Location": "Location", "Idempotent-Replayed": "Idempotent-Replayed"},
    )
    # Every error of placing but unknown_product: an order's products are never deleted.
    @operation(
        "reorder",
        OrderNotFound,
        *(error for error in PLACING_ERRORS if error is not UnknownProducts),
        links=ORDER_LINKS,
    )
    def post(self, body: dict[str, Any], order_id: int, idempotency_key: str | None = None) -> Any:
        """Order again the products and quantities of one of your orders

        A new order at today's prices and VAT, placed exactly as `POST /api/v1/orders/` places
        one (stock, minimums and case sizes, errors, `Idempotency-Key`), to `address_id` or
        your default address. The order may be in any status; another customer's is a 404."""
        return placed_response(
            reorder(
                current_principal().user_id,
                order_id,
                address_id=body.get("address_id"),
                idempotency_key=idempotency_key,
            )
        )


@blp.route(f"/<int(min=1, max={MAX_ID}):order_id>/invoice/", parameters=ORDER_ID)
class OrderInvoice(MethodView):
    @conditional(blp)
    @blp.response(200, description=INVOICE_RESPONSE["description"])
    @blp.doc(responses={"200": INVOICE_RESPONSE})
    @answers_with_headers("Content-Disposition", status=200)
    @answers_with_headers("Content-Disposition", status=304)
    @operation("getInvoice", OrderNotFound, InvoiceNotIssued)
    @authenticated
    def get(self, order_id: int) -> Any:
        """Get the invoice of one of your orders (PDF)

        Issued when the order ships: before that a 409 `invoice_not_issued`. It never changes
        once issued: send its `ETag` back as `If-None-Match` for a bodiless 304."""
        return invoice_response(get_my_invoice(current_principal().user_id, order_id))
