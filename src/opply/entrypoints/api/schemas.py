"""Marshmallow schemas: the wire format of the contract, and nothing more.

Input schemas raise on unknown fields (a client cannot set an order's owner, status or prices);
money travels as a decimal string with two places.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import validate

from opply.application.dto import OrderLineView, OrderView, ProductView
from opply.application.users import MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH
from opply.domain.model import (
    MAX_LINE_QUANTITY,
    MAX_NAME_LENGTH,
    MAX_ORDER_LINES,
    MAX_STOCK,
)

MAX_ID = 2**31 - 1
MAX_PAGE = 10_000_000
MONEY_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
# 1 to 255 printable ASCII characters, not all of them spaces.
IDEMPOTENCY_KEY_RE = re.compile(r"^(?=.*[\x21-\x7e])[\x20-\x7e]{1,255}$")
# The bound of an amount a client sends, written into the OpenAPI document too.
MONEY_IN_DOC = {"pattern": MONEY_RE.pattern, "maxLength": 13}


CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


class Money(ma.fields.Field):  # type: ignore[type-arg]
    """A non-negative amount as a decimal string, e.g. "12.50" (at most two decimal places)."""

    default_error_messages = {
        "invalid": 'Must be a decimal string with at most two decimal places, e.g. "12.50".'
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return _money(Decimal(value))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str) or not MONEY_RE.match(value):
            raise self.make_error("invalid")
        return Decimal(value).quantize(CENT)


def _id_field(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class QuerySchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


# --- products -------------------------------------------------------------------------------


class ViewSchema(ma.Schema):
    """A response schema: its fields document the wire format (the OpenAPI document is made
    from them), and the application's view objects are turned into JSON-ready dicts directly.

    marshmallow's per-field machinery was the largest CPU cost of a product page or an order
    history page; ``fast_dump`` writes the same dict in a few lines. Anything that is not the
    expected view object still goes through marshmallow, and a test checks that both paths give
    the very same output for every view.
    """

    view_type: ClassVar[type | None] = None

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else bool(many)
        view = self.view_type
        if many:
            items = list(obj)
            if view is not None and all(type(item) is view for item in items):
                return [self.fast_dump(item) for item in items]
            return super().dump(items, many=True)
        if view is not None and type(obj) is view:
            return self.fast_dump(obj)
        return super().dump(obj, many=False)

    def fast_dump(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError


class ProductSchema(ViewSchema):
    view_type = ProductView

    def fast_dump(self, obj: ProductView) -> dict[str, Any]:
        return {
            "id": obj.id,
            "name": obj.name,
            "price": _money(obj.price),
            "quantity_in_stock": obj.quantity_in_stock,
        }

    id = ma.fields.Integer(required=True, metadata={"example": 7})
    name = ma.fields.String(required=True, metadata={"example": "Oat flour 25kg"})
    price = Money(required=True, metadata={"example": "12.50", "type": "string"})
    quantity_in_stock = ma.fields.Integer(required=True, metadata={"example": 40})


_name_length = validate.Length(min=1, max=MAX_NAME_LENGTH)
_stock_range = validate.Range(min=0, max=MAX_STOCK)


class ProductCreateSchema(StrictSchema):
    name = ma.fields.String(
        required=True, metadata={"example": "Oat flour 25kg"}, validate=_name_length
    )
    price = Money(required=True, metadata={"example": "12.50", **MONEY_IN_DOC})
    quantity_in_stock = ma.fields.Integer(
        strict=True, load_default=0, metadata={"example": 40}, validate=_stock_range
    )


class ProductPatchSchema(StrictSchema):
    name = ma.fields.String(metadata={"example": "Oat flour 25kg"}, validate=_name_length)
    price = Money(metadata={"example": "13.00", **MONEY_IN_DOC})
    quantity_in_stock = ma.fields.Integer(
        strict=True, metadata={"example": 35}, validate=_stock_range
    )

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ma.ValidationError("Give at least one of name, price, quantity_in_stock.")


class RestockSchema(StrictSchema):
    quantity = ma.fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=MAX_STOCK),
        metadata={"example": 10},
    )


class PageQuerySchema(QuerySchema):
    page = ma.fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": "Page number, from 1"},
    )
    page_size = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Items per page, 1 to 100 (more is a 422)"},
    )


class ProductQuerySchema(PageQuerySchema):
    search = ma.fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Name contains this (case-insensitive)"},
    )
    in_stock = ma.fields.Boolean(
        load_default=False, metadata={"description": "true: only products with stock"}
    )


class PageSchema(ma.Schema):
    count = ma.fields.Integer(required=True, metadata={"example": 134})
    next = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"example": "http://localhost:8000/api/v1/products/?page=3&page_size=20"},
    )
    previous = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"example": "http://localhost:8000/api/v1/products/?page=1&page_size=20"},
    )

    item_schema: ClassVar[ViewSchema]

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if (
            not many
            and isinstance(obj, dict)
            and obj.keys() == {"count", "next", "previous", "results"}
        ):
            return {
                "count": obj["count"],
                "next": obj["next"],
                "previous": obj["previous"],
                "results": self.item_schema.dump(obj["results"], many=True),
            }
        return super().dump(obj, many=many)


class ProductPageSchema(PageSchema):
    item_schema = ProductSchema()

    results = ma.fields.List(ma.fields.Nested(ProductSchema), required=True)


# --- orders ---------------------------------------------------------------------------------


class OrderLineInSchema(StrictSchema):
    product_id = _id_field(required=True, metadata={"example": 7})
    quantity = ma.fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=MAX_LINE_QUANTITY),
        metadata={"example": 2},
    )


class OrderCreateSchema(StrictSchema):
    lines = ma.fields.List(
        ma.fields.Nested(OrderLineInSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ORDER_LINES),
        metadata={"description": "1 to 100 lines, one per product"},
    )

    @ma.validates_schema
    def _one_line_per_product(self, data: dict[str, Any], **_: Any) -> None:
        ids = [line["product_id"] for line in data.get("lines", [])]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ma.ValidationError(
                f"Each product may appear on one line only; repeated: "
                f"{', '.join(map(str, repeated))}",
                field_name="lines",
            )


class IdempotencyHeaderSchema(QuerySchema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=validate.Regexp(
            IDEMPOTENCY_KEY_RE, error="Must be 1 to 255 printable ASCII characters."
        ),
        metadata={
            "description": "Optional. Retrying with the same key and body returns the first "
            "answer and takes no more stock. Kept at least 24 hours."
        },
    )


class OrderLineSchema(ViewSchema):
    view_type = OrderLineView

    def fast_dump(self, obj: OrderLineView) -> dict[str, Any]:
        return {
            "product_id": obj.product_id,
            "product_name": obj.product_name,
            "unit_price": _money(obj.unit_price),
            "quantity": obj.quantity,
            "line_total": _money(obj.line_total),
        }

    product_id = ma.fields.Integer(required=True, metadata={"example": 7})
    product_name = ma.fields.String(required=True, metadata={"example": "Oat flour 25kg"})
    unit_price = Money(required=True, metadata={"example": "12.50"})
    quantity = ma.fields.Integer(required=True, metadata={"example": 2})
    line_total = Money(required=True, metadata={"example": "25.00"})


class OrderSchema(ViewSchema):
    view_type = OrderView
    _lines = OrderLineSchema()

    def fast_dump(self, obj: OrderView) -> dict[str, Any]:
        return {
            "id": obj.id,
            "status": obj.status,
            "created_at": obj.created_at.isoformat(),
            "currency": obj.currency,
            "lines": self._lines.dump(obj.lines, many=True),
            "total": _money(obj.total),
        }

    id = ma.fields.Integer(required=True, metadata={"example": 31})
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(["placed", "cancelled"]),
        metadata={"example": "placed"},
    )
    created_at = ma.fields.DateTime(
        format="iso", required=True, metadata={"example": "2026-11-24T10:15:00+00:00"}
    )
    currency = ma.fields.String(required=True, metadata={"example": "EUR"})
    lines = ma.fields.List(ma.fields.Nested(OrderLineSchema), required=True)
    total = Money(required=True, metadata={"example": "25.00"})


class OrderPageSchema(PageSchema):
    item_schema = OrderSchema()

    results = ma.fields.List(ma.fields.Nested(OrderSchema), required=True)


class OrderQuerySchema(PageQuerySchema):
    status = ma.fields.String(
        validate=validate.OneOf(["placed", "cancelled"]),
        metadata={"description": "Only orders with this status"},
    )


# --- auth -----------------------------------------------------------------------------------


class TokenRequestSchema(StrictSchema):
    username = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_USERNAME_LENGTH),
        metadata={"example": "alice"},
    )
    password = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
        metadata={"example": "correct horse battery staple"},
    )


class TokenPairSchema(ma.Schema):
    access = ma.fields.String(required=True, metadata={"description": "JWT, 15 minutes"})
    refresh = ma.fields.String(required=True, metadata={"description": "JWT, 7 days, single use"})


class RefreshRequestSchema(StrictSchema):
    refresh = ma.fields.String(required=True, validate=validate.Length(min=1, max=4096))


class StatusSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})
