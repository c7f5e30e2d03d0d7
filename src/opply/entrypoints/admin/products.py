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
from opply.entrypoints.admin.site import PAGE_SIZE, act, bp, page_number, pager, safe_next
from opply.entrypoints.api.schemas import ProductCreateSchema, ProductPatchSchema, RestockSchema
from opply.entrypoints.container import Container

list_products: ListProducts = Provide[Container.list_products]
get_product: GetProduct = Provide[Container.get_product]
create_product: CreateProduct = Provide[Container.create_product]
update_product: UpdateProduct = Provide[Container.update_product]
restock_product: RestockProduct = Provide[Container.restock_product]

PRODUCT_SORTS = {s.value for s in ProductSort}
CREATE = ProductCreateSchema()
EDIT = ProductPatchSchema(only=("name", "price"))
RESTOCK = RestockSchema()


@bp.route("/products/")
def products() -> Any:
    search = request.args.get("q", "").strip() or None
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


@bp.route("/products/new/", methods=["GET", "POST"])
def product_new() -> Any:
    form = {"name": "", "price": "", "quantity_in_stock": "0"}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            product = create_product(NewProduct(**forms.parse(CREATE, request.form)))
        except (de.DomainError, forms.FormError) as error:
            flash(error.detail, "error")
            return render_template("admin/product_form.html", form=form, product=None), 422
        flash(f"Product {product.name!r} created.", "success")
        return redirect(url_for("admin.product_edit", product_id=product.id), 303)
    return render_template("admin/product_form.html", form=form, product=None)


@bp.route("/products/<int:product_id>/", methods=["GET", "POST"])
def product_edit(product_id: int) -> Any:
    product = get_product(product_id)
    form = {"name": product.name, "price": str(product.price)}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            changes = forms.parse(EDIT, request.form, keep_blank=True)
            update_product(product_id, ProductChanges(**changes))
        except (de.DomainError, forms.FormError) as error:
            flash(error.detail, "error")
            page = render_template("admin/product_form.html", form=form, product=product)
            return page, 422
        flash("Product saved.", "success")
        return redirect(url_for("admin.product_edit", product_id=product_id), 303)
    return render_template("admin/product_form.html", form=form, product=product)


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
