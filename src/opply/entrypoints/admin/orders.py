"""Admin order pages: every customer's orders, one order (with its invoice), its moves."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask import render_template, request, url_for

from opply.application.dashboard import ExportOrders
from opply.application.dto import PageRequest
from opply.application.orders import (
    GetInvoiceAsStaff,
    GetOrderAsStaff,
    ListAllOrders,
    MoveOrder,
    OrderAction,
)
from opply.domain.model import OrderStatus
from opply.entrypoints.admin.site import PAGE_SIZE, act, bp, page_number, pager, text_arg
from opply.entrypoints.api.orders import invoice_response
from opply.entrypoints.container import Container

list_all_orders: ListAllOrders = Provide[Container.list_all_orders]
get_order_as_staff: GetOrderAsStaff = Provide[Container.get_order_as_staff]
move_order: MoveOrder = Provide[Container.move_order]
export_orders: ExportOrders = Provide[Container.export_orders]
get_invoice_as_staff: GetInvoiceAsStaff = Provide[Container.get_invoice_as_staff]

STATUSES = [s.value for s in OrderStatus]


@bp.route("/orders/")
def orders() -> Any:
    customer = text_arg("customer")
    status_raw = request.args.get("status", "")
    status = OrderStatus(status_raw) if status_raw in STATUSES else None
    page = page_number()
    found = list_all_orders(customer, status, PageRequest(page=page, page_size=PAGE_SIZE))
    return render_template(
        "admin/orders.html",
        orders=found.items,
        customer=customer or "",
        status=status.value if status else "",
        statuses=STATUSES,
        pager=pager(found, page, "admin.orders", customer=customer, status=status and status.value),
        export=export_orders.this_month(),
    )


@bp.route("/orders/<int:order_id>/")
def order_detail(order_id: int) -> Any:
    return render_template("admin/order_detail.html", order=get_order_as_staff(order_id))


@bp.route("/orders/<int:order_id>/invoice.pdf")
def order_invoice(order_id: int) -> Any:
    """The invoice as the staff API sends it (the same file, by the same use case)."""
    return invoice_response(get_invoice_as_staff(order_id))


DONE = {
    OrderAction.SHIP: "shipped",
    OrderAction.DELIVER: "delivered",
    OrderAction.CANCEL: "cancelled; its units are back in stock",
}


@bp.route("/orders/<int:order_id>/<any(ship, deliver, cancel):action>/", methods=["POST"])
def order_move(order_id: int, action: str) -> Any:
    move = OrderAction(action)
    return act(
        lambda: move_order(order_id, move),
        f"Order {order_id} {DONE[move]}.",
        url_for("admin.order_detail", order_id=order_id),
    )
