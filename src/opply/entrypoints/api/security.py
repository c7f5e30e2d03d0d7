"""Bearer authentication for the views: who is calling, and may they."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from dependency_injector.wiring import Provide, inject
from flask import g, request

from opply.application.auth import ResolvePrincipal, require_staff
from opply.application.dto import Principal
from opply.domain.errors import NotAuthenticated
from opply.entrypoints.container import Container

BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated()
    return token.strip()


@inject
def _resolve(
    token: str, resolve: ResolvePrincipal = Provide[Container.resolve_principal]
) -> Principal:
    return resolve(token)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        principal = _resolve(bearer_token())
        g.principal = principal
    return cast(Principal, principal)


def authenticated(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_principal()
        return func(*args, **kwargs)

    return cast(F, wrapper)


def staff_only(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_staff(current_principal())
        return func(*args, **kwargs)

    return cast(F, wrapper)
