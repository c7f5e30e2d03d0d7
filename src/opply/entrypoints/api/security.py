"""Bearer authentication for the views: who is calling, and may they.

``@authenticated`` and ``@staff_only`` check the caller before the request is parsed (an
unauthorised caller learns nothing about the body's rules) and document the operation's
``bearerAuth`` security and its 401 (and 403) answers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from dependency_injector.wiring import Provide
from flask import g, request
from flask_smorest import Blueprint

from opply.application.auth import ResolvePrincipal, require_staff
from opply.application.dto import Principal
from opply.domain.errors import InvalidToken, NotAuthenticated, PermissionDenied
from opply.entrypoints.api.operations import errors
from opply.entrypoints.container import Container

BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
F = TypeVar("F", bound=Callable[..., Any])

resolve_principal: ResolvePrincipal = Provide[Container.resolve_principal]


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated()
    return token.strip()


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        principal = resolve_principal(bearer_token())
        g.principal = principal
    return cast(Principal, principal)


def _documented(func: F, *classes: Any) -> F:
    func = errors(*classes)(func)
    return Blueprint.doc(security=BEARER_SECURITY)(func)


def authenticated(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_principal()
        return func(*args, **kwargs)

    return _documented(cast(F, wrapper), NotAuthenticated, InvalidToken)


def staff_only(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_staff(current_principal())
        return func(*args, **kwargs)

    return _documented(cast(F, wrapper), NotAuthenticated, InvalidToken, PermissionDenied)
