"""Catalogue endpoints: anyone reads, staff write."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView

from opply.application.dto import PageRequest
from opply.application.ports import ProductFilter
from opply.application.products import (
    CreateProduct,
    GetProduct,
    ListProducts,
    NewProduct,
    ProductChanges,
    RestockProduct,
    UpdateProduct,
)
from opply.entrypoints.api.conditional import ConditionalBlueprint
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    ProductCreateSchema,
    ProductPageSchema,
    ProductPatchSchema,
    ProductQuerySchema,
    ProductSchema,
    RestockSchema,
)
from opply.entrypoints.api.security import BEARER_SECURITY, staff_only
from opply.entrypoints.container import Container

blp = ConditionalBlueprint(
    "products", __name__, url_prefix="/api/v1/products", description="The catalogue"
)

PRODUCT_EXAMPLE = {"id": 7, "name": "Oat flour 25kg", "price": "12.50", "quantity_in_stock": 40}


def _staff_errors(func: Any) -> Any:
    func = blp.alt_response(401, response="UNAUTHORIZED", description="No or invalid token")(func)
    func = blp.alt_response(403, response="FORBIDDEN", description="Not staff")(func)
    return blp.doc(security=BEARER_SECURITY)(func)


@blp.route("/")
class Products(MethodView):
    @blp.etag
    # Schema instances, not classes: from a class, webargs builds a new schema (deep-copying
    # its fields) for every request. Loading keeps no state in the schema, so one is shared.
    @blp.arguments(ProductQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, ProductPageSchema)
    @inject
    def get(
        self,
        page: int,
        page_size: int,
        in_stock: bool,
        search: str | None = None,
        list_products: ListProducts = Provide[Container.list_products],
    ) -> Any:
        """List products, by id

        Filter with `search` (name contains, case-insensitive) and `in_stock=true`."""
        req = PageRequest(page, page_size)
        found = list_products(ProductFilter(search=search, in_stock=in_stock), req)
        return page_envelope(found, req, {"search": search, "in_stock": in_stock})

    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(
        ProductCreateSchema,
        example={"name": "Oat flour 25kg", "price": "12.50", "quantity_in_stock": 40},
    )
    @blp.response(201, ProductSchema, example=PRODUCT_EXAMPLE)
    @_staff_errors
    @inject
    def post(
        self, body: dict[str, Any], create: CreateProduct = Provide[Container.create_product]
    ) -> Any:
        """Create a product (staff)"""
        product = create(NewProduct(body["name"], body["price"], body["quantity_in_stock"]))
        return product, 201, {"Location": f"/api/v1/products/{product.id}/"}


@blp.route(f"/<int(min=1, max={MAX_ID}):product_id>/")
class ProductDetail(MethodView):
    @blp.etag
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @blp.alt_response(404, response="NOT_FOUND", description="No such product")
    @inject
    def get(self, product_id: int, get_product: GetProduct = Provide[Container.get_product]) -> Any:
        """Get one product"""
        return get_product(product_id)

    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(ProductPatchSchema, example={"price": "13.00"})
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @blp.alt_response(404, response="NOT_FOUND", description="No such product")
    @_staff_errors
    @inject
    def patch(
        self,
        body: dict[str, Any],
        product_id: int,
        update: UpdateProduct = Provide[Container.update_product],
    ) -> Any:
        """Change a product's name, price or stock count (staff)

        Orders already placed keep the name and price they were placed at."""
        return update(product_id, ProductChanges(**body))


@blp.route(f"/<int(min=1, max={MAX_ID}):product_id>/restock/")
class Restock(MethodView):
    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(RestockSchema, example={"quantity": 10})
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @blp.alt_response(404, response="NOT_FOUND", description="No such product")
    @_staff_errors
    @inject
    def post(
        self,
        body: dict[str, Any],
        product_id: int,
        restock: RestockProduct = Provide[Container.restock_product],
    ) -> Any:
        """Add a delivery to stock (staff)

        Atomic beside concurrent orders."""
        return restock(product_id, body["quantity"])
