"""Domain errors. Each class carries what every front end shows for it, in one place: a stable
machine-readable ``code``, the HTTP ``status`` the API and the admin answer with, and a short
human ``title``. ``detail`` (per instance) says what exactly went wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar


class DomainError(Exception):
    """Base of every error a client can cause."""

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidQuantity(DomainError):
    code = "invalid_quantity"
    status = 422
    title = "Invalid quantity"


class InvalidPrice(DomainError):
    code = "invalid_price"
    status = 422
    title = "Invalid price"


class InvalidName(DomainError):
    code = "invalid_name"
    status = 422
    title = "Invalid name"


@dataclass(frozen=True, kw_only=True)
class Shortage:
    """One order line that cannot be served from stock."""

    product_id: int
    requested: int
    available: int


class OutOfStock(DomainError):
    """One or more products lack the stock asked for; ``shortages`` names every short line."""

    code = "out_of_stock"
    status = 409
    title = "Not enough stock"

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        self.shortages = tuple(shortages)
        super().__init__(
            "; ".join(
                f"Product {s.product_id} has {s.available} in stock, {s.requested} requested"
                for s in self.shortages
            )
        )


def _ids(product_ids: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(product_ids)))


class UnknownProducts(DomainError):
    code = "unknown_product"
    status = 422
    title = "Unknown product"

    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = _ids(product_ids)
        listed = ", ".join(str(i) for i in self.product_ids)
        if len(self.product_ids) == 1:
            super().__init__(f"Product {listed} does not exist")
        else:
            super().__init__(f"Products {listed} do not exist")


class DuplicateProductLine(DomainError):
    code = "duplicate_product"
    status = 422
    title = "Repeated product"

    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = _ids(product_ids)
        listed = ", ".join(str(i) for i in self.product_ids)
        super().__init__(f"Each product may appear on one line only; repeated: {listed}")


class EmptyOrder(DomainError):
    code = "empty_order"
    status = 422
    title = "Empty order"

    def __init__(self) -> None:
        super().__init__("An order needs at least one line")


class InvalidDateRange(DomainError):
    """A range of days that ends before it starts, or is longer than allowed."""

    code = "invalid_date_range"
    status = 422
    title = "Invalid date range"


class NotFound(DomainError):
    """Something the caller named is not there (or is not theirs to see)."""

    code = "not_found"
    status = 404
    title = "Not found"


class ProductNotFound(NotFound):
    def __init__(self, product_id: int) -> None:
        self.product_id = product_id
        super().__init__(f"Product {product_id} does not exist")


class OrderNotFound(NotFound):
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        super().__init__(f"Order {order_id} does not exist")


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"User {username!r} does not exist")


class InvalidSku(DomainError):
    code = "invalid_sku"
    status = 422
    title = "Invalid SKU"


class SkuTaken(DomainError):
    code = "sku_taken"
    status = 409
    title = "SKU taken"

    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(f"The SKU {sku!r} belongs to another product (SKUs ignore case)")


class InvalidProductField(DomainError):
    """A unit, description or VAT rate outside its bounds."""

    code = "invalid_product_field"
    status = 422
    title = "Invalid product field"


class OrderNotCancellable(DomainError):
    code = "order_not_cancellable"
    status = 409
    title = "Order cannot be cancelled"

    def __init__(self, order_id: int, status: str) -> None:
        self.order_id = order_id
        self.order_status = status
        super().__init__(f"Order {order_id} is {status}; only a placed order can be cancelled")


class InvalidStatusTransition(DomainError):
    code = "invalid_status_transition"
    status = 409
    title = "Invalid status transition"

    def __init__(self, order_id: int, status: str, wanted: str) -> None:
        self.order_id = order_id
        self.order_status = status
        self.wanted = wanted
        super().__init__(f"Order {order_id} is {status}; it cannot become {wanted}")


class UsernameTaken(DomainError):
    code = "username_taken"
    status = 409
    title = "Username taken"

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"The username {username!r} is taken")


class InvalidUsername(DomainError):
    code = "invalid_username"
    status = 422
    title = "Invalid username"


class WeakPassword(DomainError):
    code = "weak_password"
    status = 422
    title = "Weak password"


class AuthenticationFailed(DomainError):
    """Wrong username or password: one message for both, so usernames cannot be probed."""

    code = "invalid_credentials"
    status = 401
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("No active account found with the given credentials")


class WrongCurrentPassword(DomainError):
    """The current password given to change it is wrong: the caller is known (their token is
    valid) but may not do this, hence a 403 rather than the login's 401."""

    code = "invalid_credentials"
    status = 403
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("The current password is not right")


class InvalidToken(DomainError):
    code = "invalid_token"
    status = 401
    title = "Invalid token"

    def __init__(self, detail: str = "The token is invalid or expired") -> None:
        super().__init__(detail)


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    status = 401
    title = "Not authenticated"

    def __init__(self, detail: str = "Authentication credentials were not provided") -> None:
        super().__init__(detail)


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"

    def __init__(self, detail: str = "You do not have permission to perform this action") -> None:
        super().__init__(detail)


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body")


class RequestInProgress(DomainError):
    code = "request_in_progress"
    status = 409
    title = "Request in progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly"
        )


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    status = 422
    title = "Invalid cursor"

    def __init__(self) -> None:
        super().__init__(
            "This is not a cursor of this feed: send back a next_after you were given, or "
            "omit after to start from the beginning"
        )


# --- v1.2: ordering rules, addresses, invoices -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RuleBreach:
    """One order line that breaks its product's minimum or case size."""

    product_id: int
    quantity: int
    min_order_quantity: int
    case_size: int


class OrderingRulesBroken(DomainError):
    """Lines below their product's minimum or not whole cases; ``breaches`` lists every one,
    whichever rule it breaks (the class says which rule the answer is named after)."""

    status = 422

    def __init__(self, breaches: Sequence[RuleBreach]) -> None:
        self.breaches = tuple(breaches)
        super().__init__(
            "; ".join(
                f"Product {b.product_id}: {b.quantity} ordered, at least "
                f"{b.min_order_quantity} in multiples of {b.case_size}"
                for b in self.breaches
            )
        )


class BelowMinimumQuantity(OrderingRulesBroken):
    code = "below_minimum_quantity"
    title = "Below the minimum order quantity"


class NotACaseMultiple(OrderingRulesBroken):
    code = "not_a_case_multiple"
    title = "Not a multiple of the case size"


class InvalidAddress(DomainError):
    """A delivery address field outside its bounds."""

    code = "invalid_address"
    status = 422
    title = "Invalid address"


class InvalidCountry(DomainError):
    code = "invalid_country"
    status = 422
    title = "Invalid country"

    def __init__(self, country: str) -> None:
        self.country = country
        super().__init__(f"{country!r} is not an ISO 3166-1 alpha-2 country code")


class AddressBookFull(DomainError):
    code = "address_book_full"
    status = 409
    title = "Address book full"

    def __init__(self, limit: int) -> None:
        super().__init__(f"An address book holds at most {limit} addresses; delete one first")


class DefaultAddressRequired(DomainError):
    """``is_default: false`` on the default: the book would have none."""

    code = "default_address_required"
    status = 422
    title = "Default address required"

    def __init__(self, address_id: int) -> None:
        self.address_id = address_id
        super().__init__(
            f"Address {address_id} is the default; make another address the default instead"
        )


class AddressNotFound(NotFound):
    def __init__(self, address_id: int) -> None:
        self.address_id = address_id
        super().__init__(f"Address {address_id} does not exist")


class UnknownAddress(DomainError):
    """An order sent to an address that is not in the caller's book."""

    code = "unknown_address"
    status = 422
    title = "Unknown address"

    def __init__(self, address_id: int) -> None:
        self.address_id = address_id
        super().__init__(f"Address {address_id} is not in your address book")


class InvoiceNotIssued(DomainError):
    code = "invoice_not_issued"
    status = 409
    title = "Invoice not issued"

    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        super().__init__(f"Order {order_id} has no invoice yet: it is issued when it ships")


class WebhookEndpointNotFound(NotFound):
    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(f"Webhook endpoint {endpoint_id} does not exist")


class WebhookDeliveryNotFound(NotFound):
    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"Webhook delivery {delivery_id} does not exist")


class UnsafeWebhookUrl(DomainError):
    """A URL the server must not call: not https (where http is not allowed), or an address
    inside the network (loopback, private, link-local, cloud metadata)."""

    code = "unsafe_webhook_url"
    status = 422
    title = "Unsafe webhook URL"


class DeliveryNotFailed(DomainError):
    code = "delivery_not_failed"
    status = 409
    title = "Delivery not failed"

    def __init__(self, delivery_id: int, status: str) -> None:
        self.delivery_id = delivery_id
        self.delivery_status = status
        super().__init__(
            f"Delivery {delivery_id} is {status}; only a failed delivery can be sent again"
        )
