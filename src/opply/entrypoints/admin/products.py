"""Admin product pages: search and sort, create, edit, restock."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask import flash, redirect, render_template, request, url_for

from opply.application.dto import (
    NewProduct,
    PageRequest,
    ProductChanges,
    ProductFilter,
    ProductSort,
)
from opply.application.products import (
    CreateProduct,
    GetProduct,
    ListProducts,
    RestockProduct,
    UpdateProduct,
)
from opply.domain import errors as de
from opply.entrypoints.admin import forms
from opply.entrypoints.admin.site import (
    PAGE_SIZE,
    act,
    bp,
    page_number,
    pager,
    safe_next,
    text_arg,
)
from opply.entrypoints.api.schemas import ProductCreateSchema, ProductPatchSchema, RestockSchema
from opply.entrypoints.container import Container

list_products: ListProducts = Provide[Container.list_products]
get_product: GetProduct = Provide[Container.get_product]
create_product: CreateProduct = Provide[Container.create_product]
update_product: UpdateProduct = Provide[Container.update_product]
restock_product: RestockProduct = Provide[Container.restock_product]

PRODUCT_SORTS = {s.value for s in ProductSort}
CREATE = ProductCreateSchema()
# Stock changes through deliveries (restock) and orders here, not by typing a number.
EDIT = ProductPatchSchema(exclude=("quantity_in_stock",))
RESTOCK = RestockSchema()
CREATE_FIELDS = forms.form_fields(CREATE)
EDIT_FIELDS = forms.form_fields(EDIT)


def _typed(form: Any) -> dict[str, str]:
    return {field.name: form.get(field.name, "") for field in CREATE_FIELDS}


def _shown(product: Any) -> dict[str, str]:
    return {field.name: str(getattr(product, field.name)) for field in EDIT_FIELDS}


@bp.route("/products/")
def products() -> Any:
    search = text_arg("q")
    sort_raw = request.args.get("sort", "name")
    sort = ProductSort(sort_raw) if sort_raw in PRODUCT_SORTS else ProductSort.NAME
    page = page_number()
    found = list_products(
        ProductFilter(search=search, sort=sort), PageRequest(page=page, page_size=PAGE_SIZE)
    )
    return render_template(
        "admin/products.html",
        products=found.items,
        search=search or "",
        sort=sort.value,
        pager=pager(found, page, "admin.products", q=search, sort=sort.value),
    )


def _page(form: dict[str, str], product: Any, status: int = 200) -> Any:
    fields = EDIT_FIELDS if product else CREATE_FIELDS
    page = render_template("admin/product_form.html", form=form, product=product, fields=fields)
    return page, status


@bp.route("/products/new/", methods=["GET", "POST"])
def product_new() -> Any:
    if request.method == "GET":
        return _page({"quantity_in_stock": "0", "unit": "unit", "vat_rate": "0.00"}, None)
    try:
        product = create_product(NewProduct(**forms.parse(CREATE, request.form)))
    except (de.DomainError, forms.FormError) as error:
        flash(error.detail, "error")
        return _page(_typed(request.form), None, 422)
    flash(f"Product {product.name!r} created.", "success")
    return redirect(url_for("admin.product_edit", product_id=product.id), 303)


@bp.route("/products/<int:product_id>/", methods=["GET", "POST"])
def product_edit(product_id: int) -> Any:
    product = get_product(product_id)
    if request.method == "GET":
        return _page(_shown(product), product)
    try:
        changes = forms.parse(EDIT, request.form, keep_blank=True)
        update_product(product_id, ProductChanges(**changes))
    except (de.DomainError, forms.FormError) as error:
        flash(error.detail, "error")
        return _page(_typed(request.form), product, 422)
    flash("Product saved.", "success")
    return redirect(url_for("admin.product_edit", product_id=product_id), 303)


@bp.route("/products/<int:product_id>/restock/", methods=["POST"])
def product_restock(product_id: int) -> Any:
    raw = request.form.get("quantity", "")
    back = safe_next(request.form.get("next")) if request.form.get("next") else None

    def restock() -> None:
        restock_product(product_id, forms.parse(RESTOCK, request.form)["quantity"])

    return act(
        restock,
        f"Added {raw.strip()} to stock.",
        back or url_for("admin.product_edit", product_id=product_id),
    )
