"""Marshmallow schemas: the wire format of the contract, and nothing more.

Input schemas raise on unknown fields (a client cannot set an order's owner, status or prices);
money travels as a decimal string with two places.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import validate

from opply.application.dto import DeliveryStatus
from opply.application.events import DEFAULT_FEED_LIMIT, MAX_CURSOR_LENGTH, MAX_FEED_LIMIT
from opply.application.passwords import MAX_PASSWORD_LENGTH
from opply.application.users import MAX_USERNAME_LENGTH
from opply.application.webhooks import MAX_URL_LENGTH, MAX_WEBHOOK_DESCRIPTION_LENGTH
from opply.domain.model import (
    ADDRESS_LIMITS,
    CENT,
    DEFAULT_UNIT,
    EVENT_OF_STATUS,
    MAX_ADDRESSES,
    MAX_DESCRIPTION_LENGTH,
    MAX_LINE_QUANTITY,
    MAX_NAME_LENGTH,
    MAX_ORDER_LINES,
    MAX_ORDERING_RULE,
    MAX_SKU_LENGTH,
    MAX_STOCK,
    MAX_UNIT_LENGTH,
    MAX_VAT_RATE,
    PHONE_RE,
    SKU_RE,
    OrderStatus,
)
from opply.entrypoints.api.dumping import Rendered, compiled_dumper

MAX_ID = 2**31 - 1
MAX_PAGE = 10_000_000
MONEY_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
# 1 to 255 printable ASCII characters, not all of them spaces.
IDEMPOTENCY_KEY_RE = re.compile(r"^(?=.*[\x21-\x7e])[\x20-\x7e]{1,255}$")
PERCENT_RE = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
# The bounds of an amount and a percentage a client sends, written into the document too.
MONEY_IN_DOC = {"pattern": MONEY_RE.pattern, "maxLength": 13}
PERCENT_IN_DOC = {"pattern": PERCENT_RE.pattern, "maxLength": 6}


def money_text(value: Decimal) -> str:
    """An amount on the wire: a decimal string with two places."""
    return str(value.quantize(CENT))


class Money(ma.fields.Field):  # type: ignore[type-arg]
    """A non-negative amount as a decimal string, e.g. "12.50" (at most two decimal places)."""

    default_error_messages = {
        "invalid": "Must be a non-negative amount with at most two decimal places, as a "
        'string, e.g. "12.50".'
    }

    @staticmethod
    def convert(value: Any) -> str:
        return money_text(Decimal(value))

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else self.convert(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str) or not MONEY_RE.match(value):
            raise self.make_error("invalid")
        return Decimal(value).quantize(CENT)


class Percent(Money):
    """A percentage from "0.00" to "100.00" as a decimal string, e.g. "7.00"."""

    default_error_messages = {
        "invalid": "Must be a percentage from 0 to 100 with at most two decimal places, as a "
        'string, e.g. "7.00".'
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str) or not PERCENT_RE.match(value):
            raise self.make_error("invalid")
        rate = Decimal(value).quantize(CENT)
        if rate > MAX_VAT_RATE:
            raise self.make_error("invalid")
        return rate


class UtcDateTime(ma.fields.DateTime):
    """A timestamp in ISO 8601, in UTC, with the ``Z`` suffix (``2026-11-24T10:15:00Z``;
    microseconds may follow the seconds): some client generators' validators refuse
    ``+00:00``, none refuses ``Z``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    @staticmethod
    def convert(value: datetime) -> str:
        return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else self.convert(value)


# The path parameters' descriptions (the routes' converters give their type and bounds).
PRODUCT_ID = [{"in": "path", "name": "product_id", "description": "The product's id"}]
ORDER_ID = [{"in": "path", "name": "order_id", "description": "The order's id"}]
ADDRESS_ID = [{"in": "path", "name": "address_id", "description": "The address's id"}]


def _id_field(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


# What PostgreSQL refuses to store or compare in text (and SQLite would accept): the NUL
# character, and UTF-16 surrogates that do not pair into a character (JSON can carry them).
UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSAFE_TEXT_MESSAGE = "Must not contain NUL characters or unpaired surrogates."


def unsafe_text(value: Any) -> bool:
    return isinstance(value, str) and UNSAFE_TEXT.search(value) is not None


class InputSchema(ma.Schema):
    """Base of every schema that reads what a client sends (API and admin forms alike).

    Before anything else, each declared field's text is checked for what the database cannot
    take, so such text is a 422 naming the field instead of a database error."""

    @ma.pre_load
    def _refuse_unsafe_text(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        problems = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            value = data.get(key)
            values = value if isinstance(value, list | tuple) else [value]
            if any(unsafe_text(item) for item in values):
                problems[key] = [UNSAFE_TEXT_MESSAGE]
        if problems:
            raise ma.ValidationError(problems)
        return data


class StrictSchema(InputSchema):
    class Meta:
        unknown = ma.RAISE


class QuerySchema(InputSchema):
    class Meta:
        unknown = ma.EXCLUDE


# --- products -------------------------------------------------------------------------------


class ViewSchema(ma.Schema):
    """A response schema: its fields document the wire format (the OpenAPI document is made
    from them) and are compiled once into the function that writes the views (``dumping``)."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if type(obj) is Rendered:
            return obj
        dump = compiled_dumper(self)
        if self.many if many is None else many:
            return [dump(item) for item in obj]
        return dump(obj)


class ProductSchema(ViewSchema):
    id = ma.fields.Integer(required=True, metadata={"example": 7})
    sku = ma.fields.String(
        required=True, metadata={"example": "OAT-FL-25", "description": "Article number"}
    )
    name = ma.fields.String(required=True, metadata={"example": "Oat flour 25kg"})
    description = ma.fields.String(required=True, metadata={"example": "Fine-milled, gluten-free"})
    unit = ma.fields.String(
        required=True, metadata={"example": "bag", "description": "What one unit is"}
    )
    price = Money(
        required=True, metadata={"example": "12.50", "description": "Net unit price (before VAT)"}
    )
    vat_rate = Percent(
        required=True, metadata={"example": "7.00", "description": "VAT, a percentage"}
    )
    quantity_in_stock = ma.fields.Integer(required=True, metadata={"example": 40})
    min_order_quantity = ma.fields.Integer(
        required=True,
        metadata={"example": 2, "description": "A line orders at least this many units"},
    )
    case_size = ma.fields.Integer(
        required=True,
        metadata={"example": 2, "description": "A line orders whole cases: a multiple of this"},
    )


_name_length = validate.Length(min=1, max=MAX_NAME_LENGTH)
_stock_range = validate.Range(
    min=0, max=MAX_STOCK, error="Must be a whole number from {min} to {max}."
)
_sku = validate.Regexp(
    SKU_RE,
    error=f"Must be 1 to {MAX_SKU_LENGTH} letters, digits or . _ - characters.",
)
_unit_length = validate.Length(min=1, max=MAX_UNIT_LENGTH)
_description_length = validate.Length(max=MAX_DESCRIPTION_LENGTH)
_ordering_rule = validate.Range(
    min=1, max=MAX_ORDERING_RULE, error="Must be a whole number from {min} to {max}."
)
PRODUCT_FIELDS = (
    "name, sku, description, unit, price, vat_rate, quantity_in_stock, min_order_quantity, "
    "case_size"
)


def _min_order_quantity(example: int, description: str = "") -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=_ordering_rule,
        metadata={
            "example": example,
            "label": "Minimum order quantity",
            "description": f"A multiple of case_size{description}",
        },
    )


def _case_size(example: int, description: str = "") -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=_ordering_rule,
        metadata={
            "example": example,
            "label": "Case size",
            "description": f"Units a line orders in multiples of{description}",
        },
    )


class ProductCreateSchema(StrictSchema):
    """A new product. A field left out gets the default its description names, which
    ``NewProduct`` holds: the document states it in words, not as a schema ``default``, which
    openapi-typescript would turn into a property every client must send."""

    name = ma.fields.String(
        required=True, metadata={"example": "Oat flour 25kg"}, validate=_name_length
    )
    sku = ma.fields.String(
        validate=_sku,
        metadata={
            "example": "OAT-FL-25",
            "label": "SKU",
            "description": "Unique ignoring case; without one the product gets P- and its id "
            "(P-000007)",
        },
    )
    description = ma.fields.String(
        validate=_description_length,
        metadata={
            "example": "Fine-milled, gluten-free",
            "widget": "textarea",
            "description": 'Default: "" (none)',
        },
    )
    unit = ma.fields.String(
        validate=_unit_length,
        metadata={"example": "bag", "description": f'What one unit is. Default: "{DEFAULT_UNIT}"'},
    )
    price = Money(
        required=True,
        metadata={
            "example": "12.50",
            "label": "Price (net)",
            "description": "Net unit price, before VAT",
            **MONEY_IN_DOC,
        },
    )
    vat_rate = Percent(
        metadata={
            "example": "7.00",
            "label": "VAT rate (%)",
            "description": 'A percentage. Default: "0.00"',
            **PERCENT_IN_DOC,
        },
    )
    quantity_in_stock = ma.fields.Integer(
        strict=True,
        metadata={"example": 40, "label": "Stock to start with", "description": "Default: 0"},
        validate=_stock_range,
    )
    min_order_quantity = _min_order_quantity(2, ". Default: 1")
    case_size = _case_size(2, ". Default: 1")


class ProductPatchSchema(StrictSchema):
    # Written into the document (api/operations.py): an empty body is refused (_not_empty).
    openapi_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    name = ma.fields.String(metadata={"example": "Oat flour 25kg"}, validate=_name_length)
    sku = ma.fields.String(validate=_sku, metadata={"example": "OAT-FL-25", "label": "SKU"})
    description = ma.fields.String(
        validate=_description_length,
        metadata={"example": "Fine-milled, gluten-free", "widget": "textarea"},
    )
    unit = ma.fields.String(validate=_unit_length, metadata={"example": "bag"})
    price = Money(metadata={"example": "13.00", "label": "Price (net)", **MONEY_IN_DOC})
    vat_rate = Percent(metadata={"example": "7.00", "label": "VAT rate (%)", **PERCENT_IN_DOC})
    quantity_in_stock = ma.fields.Integer(
        strict=True, metadata={"example": 35}, validate=_stock_range
    )
    min_order_quantity = _min_order_quantity(2)
    case_size = _case_size(2)

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ma.ValidationError(f"Give at least one of {PRODUCT_FIELDS}.")


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
        metadata={"description": "Name or SKU contains this (case-insensitive)"},
    )
    in_stock = ma.fields.Boolean(
        load_default=False, metadata={"description": "true: only products with stock"}
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class PageEnvelope:
    """One page of a list as the contract sends it."""

    count: int
    next: str | None
    previous: str | None
    results: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class ListEnvelope:
    """A whole (short) list as the contract sends it: ``{"results": [...]}``."""

    results: Any


def _page_link(path: str, page: int) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"example": f"http://localhost:8000{path}?page={page}&page_size=20"},
    )


class PageSchema(ViewSchema):
    count = ma.fields.Integer(required=True, metadata={"example": 134})


class ProductPageSchema(PageSchema):
    next = _page_link("/api/v1/products/", 3)
    previous = _page_link("/api/v1/products/", 1)
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
    address_id = _id_field(
        metadata={
            "example": 3,
            "description": "Where it goes: one of your addresses. Default: your default "
            "address (none while your address book is empty)",
        }
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


class ReorderSchema(StrictSchema):
    address_id = _id_field(
        metadata={
            "example": 3,
            "description": "Where it goes: one of your addresses. Default: your default "
            "address (none while your address book is empty)",
        }
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
    product_id = ma.fields.Integer(required=True, metadata={"example": 7})
    sku = ma.fields.String(required=True, metadata={"example": "OAT-FL-25"})
    product_name = ma.fields.String(required=True, metadata={"example": "Oat flour 25kg"})
    unit = ma.fields.String(required=True, metadata={"example": "bag"})
    unit_price = Money(required=True, metadata={"example": "12.50"})
    vat_rate = Percent(required=True, metadata={"example": "7.00"})
    quantity = ma.fields.Integer(required=True, metadata={"example": 3})
    line_net = Money(
        required=True, metadata={"example": "37.50", "description": "unit_price x quantity"}
    )
    line_vat = Money(
        required=True,
        metadata={
            "example": "2.63",
            "description": "line_net x vat_rate / 100, to the cent, half up",
        },
    )
    line_total = Money(
        required=True, metadata={"example": "40.13", "description": "line_net + line_vat"}
    )


ORDER_STATUSES = [status.value for status in OrderStatus]


def _moment(example: str | None, description: str) -> UtcDateTime:
    return UtcDateTime(
        required=True,
        allow_none=example is None,
        metadata={"example": example, "description": description},
    )


class DeliveryAddressSchema(ViewSchema):
    recipient = ma.fields.String(required=True, metadata={"example": "Jane Baker"})
    company = ma.fields.String(required=True, metadata={"example": "Baker & Co"})
    line1 = ma.fields.String(required=True, metadata={"example": "12 Mill Lane"})
    line2 = ma.fields.String(required=True, metadata={"example": ""})
    postal_code = ma.fields.String(required=True, metadata={"example": "EC1A 1BB"})
    city = ma.fields.String(required=True, metadata={"example": "London"})
    country = ma.fields.String(
        required=True, metadata={"example": "GB", "description": "ISO 3166-1 alpha-2"}
    )
    phone = ma.fields.String(required=True, metadata={"example": "+44 20 7946 0000"})


class OrderSchema(ViewSchema):
    id = ma.fields.Integer(required=True, metadata={"example": 31})
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(ORDER_STATUSES),
        metadata={
            "example": "placed",
            "description": "placed -> shipped -> delivered, or placed -> cancelled",
        },
    )
    created_at = _moment("2026-11-24T10:15:00Z", "When it was placed")
    shipped_at = _moment(None, "When it was shipped; null until then")
    delivered_at = _moment(None, "When it was delivered; null until then")
    cancelled_at = _moment(None, "When it was cancelled; null unless it was")
    currency = ma.fields.String(required=True, metadata={"example": "EUR"})
    lines = ma.fields.List(ma.fields.Nested(OrderLineSchema), required=True)
    subtotal = Money(required=True, metadata={"example": "37.50", "description": "Sum of line_net"})
    vat_total = Money(required=True, metadata={"example": "2.63", "description": "Sum of line_vat"})
    total = Money(
        required=True,
        metadata={"example": "40.13", "description": "subtotal + vat_total: what is paid"},
    )
    delivery_address = ma.fields.Nested(
        DeliveryAddressSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "Where it goes, copied when it was placed; null if the address "
            "book was empty"
        },
    )
    invoice_number = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "example": None,
            "description": "INV-<year>-<6 digits>, given when it ships; null until then",
        },
    )


class CustomerSchema(ViewSchema):
    id = ma.fields.Integer(required=True, metadata={"example": 12})
    username = ma.fields.String(required=True, metadata={"example": "alice"})


class StaffOrderSchema(OrderSchema):
    customer = ma.fields.Nested(CustomerSchema, required=True)


class OrderPageSchema(PageSchema):
    next = _page_link("/api/v1/orders/", 3)
    previous = _page_link("/api/v1/orders/", 1)
    results = ma.fields.List(ma.fields.Nested(OrderSchema), required=True)


class StaffOrderPageSchema(PageSchema):
    next = _page_link("/api/v1/staff/orders/", 3)
    previous = _page_link("/api/v1/staff/orders/", 1)
    results = ma.fields.List(ma.fields.Nested(StaffOrderSchema), required=True)


class OrderQuerySchema(PageQuerySchema):
    status = ma.fields.String(
        validate=validate.OneOf(ORDER_STATUSES),
        metadata={"description": "Only orders with this status"},
    )


class StaffOrderQuerySchema(OrderQuerySchema):
    customer = ma.fields.String(
        validate=validate.Length(min=1, max=MAX_USERNAME_LENGTH),
        metadata={"description": "Only this customer's orders (username)"},
    )


# --- order events ---------------------------------------------------------------------------

EVENT_TYPES = [event.type for event in EVENT_OF_STATUS.values()]


class EventDataSchema(ViewSchema):
    order = ma.fields.Nested(
        OrderSchema,
        required=True,
        metadata={"description": "The order as `GET /api/v1/orders/{id}/` returned it then"},
    )


class OrderEventSchema(ViewSchema):
    id = ma.fields.Integer(
        required=True,
        metadata={"example": 1042, "description": "The event's id: the same on every delivery"},
    )
    type = ma.fields.String(
        required=True,
        validate=validate.OneOf(EVENT_TYPES),
        metadata={"example": "order.shipped", "description": "What happened to the order"},
    )
    timestamp = UtcDateTime(
        required=True,
        attribute="occurred_at",
        metadata={"example": "2026-12-02T10:15:00Z", "description": "When it happened"},
    )
    data = ma.fields.Nested(EventDataSchema, required=True)


class EventFeedSchema(ViewSchema):
    results = ma.fields.List(
        ma.fields.Nested(OrderEventSchema),
        required=True,
        attribute="items",
        metadata={"description": "Oldest first; empty when nothing new happened"},
    )
    next_after = ma.fields.String(
        required=True,
        metadata={
            "example": "ZTEuODgyMzEuMTA0Mg",
            "description": "Send it back as `after` next time (the same cursor when nothing "
            "new came)",
        },
    )


class EventFeedQuerySchema(QuerySchema):
    after = ma.fields.String(
        validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH),
        metadata={
            "description": "The `next_after` of your last answer; omit it to start from the "
            "beginning. Anything else is a 422 `invalid_cursor`."
        },
    )
    limit = ma.fields.Integer(
        load_default=DEFAULT_FEED_LIMIT,
        validate=validate.Range(min=1, max=MAX_FEED_LIMIT),
        metadata={"description": "Events per answer, 1 to 100 (default 50)"},
    )


# --- addresses ------------------------------------------------------------------------------


# An address as its book shows it: the delivery address's fields, between its id and label and
# whether it is the default.
AddressSchema = ViewSchema.from_dict(
    {
        "id": ma.fields.Integer(required=True, metadata={"example": 3}),
        "label": ma.fields.String(required=True, metadata={"example": "Warehouse"}),
        **DeliveryAddressSchema._declared_fields,
        "is_default": ma.fields.Boolean(required=True, metadata={"example": True}),
    },
    name="Address",
)


class AddressListSchema(ViewSchema):
    results = ma.fields.List(
        ma.fields.Nested(AddressSchema),
        required=True,
        metadata={"description": f"The default first, then newest first; at most {MAX_ADDRESSES}"},
    )


_phone = validate.Regexp(PHONE_RE, error="Must hold only digits, spaces and + ( ) -.")
_country = validate.Regexp(
    re.compile(r"^[A-Za-z]{2}$"), error="Must be an ISO 3166-1 alpha-2 code, e.g. GB."
)


def _address_field(name: str, example: str, required: bool, **extra: Any) -> ma.fields.String:
    least, most = ADDRESS_LIMITS[name]
    validators: list[Any] = [validate.Length(min=least, max=most)]
    if name == "phone":
        validators.append(_phone)
    if name == "country":
        validators = [_country]
    return ma.fields.String(
        required=required,
        validate=validators,
        metadata={"example": example, **extra},
    )


def _address_fields(required: bool) -> dict[str, ma.fields.Field[Any]]:
    """The fields a client sends, with their bounds (the domain's ``ADDRESS_LIMITS``)."""
    default = {} if required else {"description": 'Default: ""'}
    return {
        "label": _address_field("label", "Warehouse", False, **default),
        "recipient": _address_field("recipient", "Jane Baker", required),
        "company": _address_field("company", "Baker & Co", False, **default),
        "line1": _address_field("line1", "12 Mill Lane", required),
        "line2": _address_field("line2", "", False, **default),
        "postal_code": _address_field("postal_code", "EC1A 1BB", required),
        "city": _address_field("city", "London", required),
        "country": _address_field(
            "country", "GB", required, description="ISO 3166-1 alpha-2, any case"
        ),
        "phone": _address_field(
            "phone", "+44 20 7946 0000", False, description='Digits, spaces and +()-. Default: ""'
        ),
        "is_default": ma.fields.Boolean(
            metadata={
                "example": True,
                "description": "true: this becomes the default address (the first one always "
                "is); false on the default is a 422",
            }
        ),
    }


AddressCreateSchema = StrictSchema.from_dict(_address_fields(required=True), name="AddressCreate")


class AddressPatchSchema(StrictSchema.from_dict(_address_fields(required=False))):  # type: ignore[misc]
    openapi_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ma.ValidationError("Give at least one field to change.")


# --- auth -----------------------------------------------------------------------------------


JWT_EXAMPLE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMiJ9.c2lnbmF0dXJl"


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


class TokenPairSchema(ViewSchema):
    access = ma.fields.String(
        required=True, metadata={"description": "JWT, 15 minutes", "example": JWT_EXAMPLE}
    )
    refresh = ma.fields.String(
        required=True, metadata={"description": "JWT, 7 days, single use", "example": JWT_EXAMPLE}
    )


class RefreshRequestSchema(StrictSchema):
    refresh = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=4096),
        metadata={"description": "The refresh token of the last pair", "example": JWT_EXAMPLE},
    )


class MeSchema(ViewSchema):
    id = ma.fields.Integer(required=True, attribute="user_id", metadata={"example": 12})
    username = ma.fields.String(required=True, metadata={"example": "alice"})
    is_staff = ma.fields.Boolean(required=True, metadata={"example": False})


class PasswordChangeSchema(StrictSchema):
    current_password = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
        metadata={"example": "correct horse battery staple"},
    )
    new_password = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
        metadata={
            "example": "a new long passphrase",
            "description": "At least 8 characters, not a common password",
        },
    )


class StatusSchema(ViewSchema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


class HealthSchema(StatusSchema):
    """The liveness answer also names the release that gives it (entrypoints/release.py)."""

    version = ma.fields.String(
        required=True,
        metadata={"example": "1.2.0", "description": "The version of the package that answers"},
    )
    commit = ma.fields.String(
        required=True,
        metadata={
            "example": "808dfab8c0ffee0000000000000000000000000a",
            "description": "The git commit the release was made from, or `unknown`",
        },
    )


# --- webhooks -------------------------------------------------------------------------------

DELIVERY_STATUSES = [status.value for status in DeliveryStatus]
WEBHOOK_ID = [{"in": "path", "name": "endpoint_id", "description": "The webhook endpoint's id"}]
DELIVERY_ID = [{"in": "path", "name": "delivery_id", "description": "The delivery's id"}]


class StaffEventDataSchema(ViewSchema):
    order = ma.fields.Nested(
        StaffOrderSchema,
        required=True,
        metadata={"description": "The order as `GET /api/v1/staff/orders/{id}/` returned it then"},
    )


class WebhookEventSchema(OrderEventSchema):
    """The body of every webhook delivery: the event, with the order as staff see it."""

    data = ma.fields.Nested(StaffEventDataSchema, required=True)


def _webhook_url(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={
            "example": "https://erp.example.com/hooks/opply",
            "description": "https:// (http:// only where the deployment allows it), to a "
            "public address; anything else is a 422 `unsafe_webhook_url`",
        },
        **kwargs,
    )


def _event_types(**kwargs: Any) -> ma.fields.List[Any]:
    return ma.fields.List(
        ma.fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={
            "example": ["order.placed", "order.shipped"],
            "description": "The event types to send it",
        },
        **kwargs,
    )


def _webhook_description(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=validate.Length(max=MAX_WEBHOOK_DESCRIPTION_LENGTH),
        metadata={"example": "ERP order sync"},
        **kwargs,
    )


class WebhookEndpointCreateSchema(StrictSchema):
    url = _webhook_url(required=True)
    event_types = _event_types(required=True)
    description = _webhook_description(load_default="")


WEBHOOK_FIELDS = "url, event_types, description, is_active"


class WebhookEndpointPatchSchema(StrictSchema):
    # Written into the document (api/operations.py): an empty body is refused (_not_empty).
    openapi_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    url = _webhook_url()
    event_types = _event_types()
    description = _webhook_description()
    is_active = ma.fields.Boolean(
        metadata={"example": False, "description": "false stops deliveries to it"}
    )

    @ma.validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ma.ValidationError(f"Give at least one of {WEBHOOK_FIELDS}.")


class WebhookEndpointSchema(ViewSchema):
    id = ma.fields.Integer(required=True, metadata={"example": 3})
    url = ma.fields.String(
        required=True, metadata={"example": "https://erp.example.com/hooks/opply"}
    )
    event_types = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        metadata={"example": ["order.placed", "order.shipped"]},
    )
    description = ma.fields.String(required=True, metadata={"example": "ERP order sync"})
    secret = ma.fields.String(
        required=True,
        metadata={
            "example": "whsec_EXAMPLEexampleEXAMPLEexampleEXAMPLEexample0=",
            "description": "Verifies the `webhook-signature` of every delivery (Standard "
            "Webhooks): `whsec_` and base64 of 32 random bytes",
        },
    )
    is_active = ma.fields.Boolean(
        required=True,
        metadata={
            "example": True,
            "description": "false: nothing is sent (set by staff, by a 410 answer, or after "
            "5 days of failures)",
        },
    )
    created_at = UtcDateTime(required=True, metadata={"example": "2026-12-02T09:00:00Z"})


class WebhookEndpointPageSchema(PageSchema):
    next = _page_link("/api/v1/staff/webhooks/", 3)
    previous = _page_link("/api/v1/staff/webhooks/", 1)
    results = ma.fields.List(ma.fields.Nested(WebhookEndpointSchema), required=True)


class WebhookDeliverySchema(ViewSchema):
    id = ma.fields.Integer(required=True, metadata={"example": 5310})
    event_id = ma.fields.Integer(
        required=True, metadata={"example": 1042, "description": "Sent as `webhook-id`"}
    )
    event_type = ma.fields.String(
        required=True, validate=validate.OneOf(EVENT_TYPES), metadata={"example": "order.shipped"}
    )
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={
            "example": "pending",
            "description": "pending (waiting for its next attempt), delivered (a 2xx), or "
            "failed (every attempt of the schedule failed)",
        },
    )
    attempts = ma.fields.Integer(required=True, metadata={"example": 2})
    last_status_code = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"example": 503, "description": "The last answer's status; null before one"},
    )
    last_error = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"example": "HTTP 503", "description": "Why the last attempt failed"},
    )
    next_attempt_at = UtcDateTime(
        required=True,
        allow_none=True,
        metadata={
            "example": "2026-12-02T10:20:00Z",
            "description": "When it is attempted next; null when none is due",
        },
    )
    created_at = UtcDateTime(required=True, metadata={"example": "2026-12-02T10:15:00Z"})


class WebhookDeliveryPageSchema(PageSchema):
    next = _page_link("/api/v1/staff/webhooks/3/deliveries/", 3)
    previous = _page_link("/api/v1/staff/webhooks/3/deliveries/", 1)
    results = ma.fields.List(ma.fields.Nested(WebhookDeliverySchema), required=True)
