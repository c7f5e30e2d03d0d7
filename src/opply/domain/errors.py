"""Domain errors, each with a stable machine-readable ``code`` the HTTP layer maps to a status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error a client can cause; ``code`` is stable, ``detail`` is for humans."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidQuantity(DomainError):
    code = "invalid_quantity"


class InvalidPrice(DomainError):
    code = "invalid_price"


class InvalidName(DomainError):
    code = "invalid_name"


@dataclass(frozen=True)
class Shortage:
    """One order line that cannot be served from stock."""

    product_id: int
    requested: int
    available: int


class OutOfStock(DomainError):
    """One or more products lack the stock asked for; ``shortages`` names every short line."""

    code = "out_of_stock"

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        self.shortages = tuple(shortages)
        parts = [
            f"Product {s.product_id} has {s.available} in stock, {s.requested} requested"
            for s in self.shortages
        ]
        super().__init__("; ".join(parts))


class UnknownProducts(DomainError):
    code = "unknown_product"

    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = tuple(sorted(set(product_ids)))
        ids = ", ".join(str(i) for i in self.product_ids)
        noun = "Product" if len(self.product_ids) == 1 else "Products"
        super().__init__(
            f"{noun} {ids} do not exist"
            if len(self.product_ids) > 1
            else f"{noun} {ids} does not exist"
        )


class DuplicateProductLine(DomainError):
    code = "duplicate_product"

    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = tuple(sorted(set(product_ids)))
        ids = ", ".join(str(i) for i in self.product_ids)
        super().__init__(f"Each product may appear on one line only; repeated: {ids}")


class EmptyOrder(DomainError):
    code = "empty_order"

    def __init__(self) -> None:
        super().__init__("An order needs at least one line")


class ProductNotFound(DomainError):
    code = "not_found"

    def __init__(self, product_id: int) -> None:
        self.product_id = product_id
        super().__init__(f"Product {product_id} does not exist")


class OrderNotFound(DomainError):
    code = "not_found"

    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        super().__init__(f"Order {order_id} does not exist")


class OrderNotCancellable(DomainError):
    code = "order_not_cancellable"

    def __init__(self, order_id: int, status: str) -> None:
        self.order_id = order_id
        self.status = status
        super().__init__(f"Order {order_id} is {status}; only a placed order can be cancelled")


class UsernameTaken(DomainError):
    code = "username_taken"

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"The username {username!r} is taken")


class InvalidUsername(DomainError):
    code = "invalid_username"


class WeakPassword(DomainError):
    code = "weak_password"


class UserNotFound(DomainError):
    code = "not_found"

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"User {username!r} does not exist")


class AuthenticationFailed(DomainError):
    """Wrong username or password: one message for both, so usernames cannot be probed."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("No active account found with the given credentials")


class InvalidToken(DomainError):
    code = "invalid_token"

    def __init__(self, detail: str = "The token is invalid or expired") -> None:
        super().__init__(detail)


class NotAuthenticated(DomainError):
    code = "not_authenticated"

    def __init__(self, detail: str = "Authentication credentials were not provided") -> None:
        super().__init__(detail)


class PermissionDenied(DomainError):
    code = "permission_denied"

    def __init__(self, detail: str = "You do not have permission to perform this action") -> None:
        super().__init__(detail)


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body")


class RequestInProgress(DomainError):
    code = "request_in_progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly"
        )
