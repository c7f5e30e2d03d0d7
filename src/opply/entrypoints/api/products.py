"""Catalogue endpoints: anyone reads, staff write."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.dto import NewProduct, PageRequest, ProductChanges, ProductFilter
from opply.application.products import (
    CreateProduct,
    GetProduct,
    ListProducts,
    RestockProduct,
    UpdateProduct,
)
from opply.domain.errors import (
    InvalidName,
    InvalidPrice,
    InvalidProductField,
    InvalidQuantity,
    InvalidSku,
    ProductNotFound,
    SkuTaken,
)
from opply.entrypoints.api.conditional import conditional
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.pagination import page_envelope
from opply.entrypoints.api.schemas import (
    MAX_ID,
    PRODUCT_ID,
    ProductCreateSchema,
    ProductPageSchema,
    ProductPatchSchema,
    ProductQuerySchema,
    ProductSchema,
    RestockSchema,
)
from opply.entrypoints.api.security import staff_only
from opply.entrypoints.container import Container

blp = Blueprint("products", __name__, url_prefix="/api/v1/products", description="The catalogue")

# Every field's example, from the schema's declarations.
PRODUCT_EXAMPLE = {
    name: field.metadata["example"] for name, field in ProductSchema().dump_fields.items()
}

list_products: ListProducts = Provide[Container.list_products]
get_product: GetProduct = Provide[Container.get_product]
create_product: CreateProduct = Provide[Container.create_product]
update_product: UpdateProduct = Provide[Container.update_product]
restock_product: RestockProduct = Provide[Container.restock_product]


@blp.route("/")
class Products(MethodView):
    @conditional(blp)
    # Schema instances, not classes: from a class, webargs builds a new schema (deep-copying
    # its fields) for every request. Loading keeps no state in the schema, so one is shared.
    @blp.arguments(ProductQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, ProductPageSchema)
    @operation("listProducts")
    def get(self, page: int, page_size: int, in_stock: bool, search: str | None = None) -> Any:
        """List products, by id

        Filter with `search` (name or SKU contains, case-insensitive) and `in_stock=true`."""
        req = PageRequest(page=page, page_size=page_size)
        found = list_products(ProductFilter(search=search, in_stock=in_stock), req)
        return page_envelope(found, req, {"search": search, "in_stock": in_stock})

    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(
        ProductCreateSchema,
        example={k: v for k, v in PRODUCT_EXAMPLE.items() if k != "id"},
    )
    @blp.response(201, ProductSchema, example=PRODUCT_EXAMPLE, headers={"Location": "Location"})
    @operation(
        "createProduct",
        InvalidName,
        InvalidPrice,
        InvalidProductField,
        InvalidQuantity,
        InvalidSku,
        SkuTaken,
        links={
            201: {
                target: {"product_id": "$response.body#/id"}
                for target in ("getProduct", "updateProduct", "restockProduct")
            }
        },
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Create a product (staff)

        Without a `sku`, the product gets `P-` and its id padded to six digits (`P-000007`)."""
        product = create_product(NewProduct(**body))
        return product, 201, {"Location": f"/api/v1/products/{product.id}/"}


@blp.route(f"/<int(min=1, max={MAX_ID}):product_id>/", parameters=PRODUCT_ID)
class ProductDetail(MethodView):
    @conditional(blp)
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @operation("getProduct", ProductNotFound)
    def get(self, product_id: int) -> Any:
        """Get one product

        Carries an `ETag`: send it back as `If-None-Match` and an unchanged product is a
        bodiless 304."""
        return get_product(product_id)

    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(ProductPatchSchema, example={"price": "13.00"})
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @operation(
        "updateProduct",
        ProductNotFound,
        InvalidName,
        InvalidPrice,
        InvalidProductField,
        InvalidQuantity,
        InvalidSku,
        SkuTaken,
    )
    def patch(self, body: dict[str, Any], product_id: int) -> Any:
        """Change any of a product's fields but its id (staff)

        Orders already placed keep what they were placed with (name, SKU, unit, price, VAT).
        A new `quantity_in_stock` is a correction after a count, not a delivery."""
        return update_product(product_id, ProductChanges(**body))


@blp.route(f"/<int(min=1, max={MAX_ID}):product_id>/restock/", parameters=PRODUCT_ID)
class Restock(MethodView):
    @staff_only  # before parsing: no body details for the unauthorised
    @blp.arguments(RestockSchema, example={"quantity": 10})
    @blp.response(200, ProductSchema, example=PRODUCT_EXAMPLE)
    @operation("restockProduct", ProductNotFound, InvalidQuantity)
    def post(self, body: dict[str, Any], product_id: int) -> Any:
        """Add a delivery to stock (staff)

        Atomic beside concurrent orders."""
        return restock_product(product_id, body["quantity"])
