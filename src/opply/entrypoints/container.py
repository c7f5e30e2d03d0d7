"""The one place that knows which adapter serves which port.

Engine and session factory are singletons (one pool per process); units of work and use cases
are factories, so every request gets its own. Tests swap adapters with ``override``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from opply.adapters.clock import SystemClock
from opply.adapters.database import make_engine, make_session_factory
from opply.adapters.passwords import Argon2PasswordHasher
from opply.adapters.sqlalchemy_uow import SqlAlchemyUnitOfWork
from opply.adapters.tokens import JwtTokenService
from opply.application import auth, orders, products, users


class Container(containers.DeclarativeContainer):
    # No wiring_config: create_app wires the API and the admin to the container it serves, so
    # a CLI command building a container neither imports nor patches the views.

    settings: providers.Dependency[Settings] = providers.Dependency()

    engine = providers.Singleton(
        make_engine,
        url=settings.provided.database_url,
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
    )
    session_factory = providers.Singleton(make_session_factory, engine)
    uow = providers.Factory(SqlAlchemyUnitOfWork, session_factory=session_factory)

    clock = providers.Singleton(SystemClock)
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    token_service = providers.Singleton(
        JwtTokenService,
        secret=settings.provided.secret_key,
        issuer=settings.provided.token_issuer,
        access_ttl=settings.provided.access_token_ttl,
        refresh_ttl=settings.provided.refresh_token_ttl,
        clock=clock,
    )

    authenticate = providers.Factory(
        auth.Authenticate, uow=uow, hasher=password_hasher, tokens=token_service
    )
    refresh_tokens = providers.Factory(
        auth.RefreshTokens, uow=uow, tokens=token_service, clock=clock
    )
    revoke_refresh_token = providers.Factory(
        auth.RevokeRefreshToken, uow=uow, tokens=token_service, clock=clock
    )
    resolve_principal = providers.Factory(auth.ResolvePrincipal, uow=uow, tokens=token_service)
    authenticate_staff = providers.Factory(auth.AuthenticateStaff, uow=uow, hasher=password_hasher)
    get_active_staff = providers.Factory(auth.GetActiveStaff, uow=uow)

    list_products = providers.Factory(products.ListProducts, uow=uow)
    get_product = providers.Factory(products.GetProduct, uow=uow)
    create_product = providers.Factory(products.CreateProduct, uow=uow)
    update_product = providers.Factory(products.UpdateProduct, uow=uow)
    restock_product = providers.Factory(products.RestockProduct, uow=uow)

    place_order = providers.Factory(
        orders.PlaceOrder, uow=uow, clock=clock, currency=settings.provided.currency
    )
    list_my_orders = providers.Factory(orders.ListMyOrders, uow=uow)
    get_my_order = providers.Factory(orders.GetMyOrder, uow=uow)
    cancel_my_order = providers.Factory(orders.CancelMyOrder, uow=uow)
    list_all_orders = providers.Factory(orders.ListAllOrders, uow=uow)
    get_order_as_staff = providers.Factory(orders.GetOrderAsStaff, uow=uow)
    cancel_order_as_staff = providers.Factory(orders.CancelOrderAsStaff, uow=uow)

    create_user = providers.Factory(users.CreateUser, uow=uow, hasher=password_hasher)
    set_password = providers.Factory(users.SetPassword, uow=uow, hasher=password_hasher)
    set_user_active = providers.Factory(users.SetUserActive, uow=uow)
    list_users = providers.Factory(users.ListUsers, uow=uow)
    get_user = providers.Factory(users.GetUser, uow=uow)


if TYPE_CHECKING:
    from opply.entrypoints.config import Settings


def build_container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(providers.Object(settings))
    return container
