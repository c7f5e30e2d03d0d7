"""The one place that knows which adapter serves which port.

Everything here is a singleton, built once per process: the engines (one connection pool each),
the unit of work (which opens a new read or write unit of work, i.e. a transaction, on every
call, so it holds nothing per request), and the use cases, which hold only those. So a view gets
its use case once, when the app is wired (``Provide`` markers on the view modules' attributes),
and pays nothing per request for it. Tests swap adapters with ``override`` before building the
app, and ``create_app`` unwires what it wired when the app is torn down (``unwire_app``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from opply.adapters.clock import SystemClock
from opply.adapters.database import make_engine, make_read_engine, make_session_factory
from opply.adapters.invoice_pdf import FpdfInvoiceRenderer
from opply.adapters.passwords import Argon2PasswordHasher
from opply.adapters.sql_uow import SqlUnitOfWork
from opply.adapters.sql_webhooks import SqlWebhookStore
from opply.adapters.tokens import JwtTokenService
from opply.adapters.webhook_http import HttpxWebhookSender, UrlPolicy
from opply.application import addresses, auth, dashboard, events, orders, products, users, webhooks
from opply.application.ports import Seller
from opply.entrypoints.webhook_body import render_webhook_event


class Container(containers.DeclarativeContainer):
    settings: providers.Dependency[Settings] = providers.Dependency()

    engine = providers.Singleton(
        make_engine,
        url=settings.provided.database_url,
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
    )
    read_engine = providers.Singleton(
        make_read_engine,
        engine,
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
    )
    session_factory = providers.Singleton(make_session_factory, engine)
    uow = providers.Singleton(SqlUnitOfWork, read_bind=read_engine, session_factory=session_factory)

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
    # The wire format of an order, kept with an Idempotency-Key: the API's schema, compiled.

    authenticate = providers.Singleton(
        auth.Authenticate, uow=uow, hasher=password_hasher, tokens=token_service
    )
    refresh_tokens = providers.Singleton(
        auth.RefreshTokens, uow=uow, tokens=token_service, clock=clock
    )
    revoke_refresh_token = providers.Singleton(
        auth.RevokeRefreshToken, uow=uow, tokens=token_service, clock=clock
    )
    resolve_principal = providers.Singleton(auth.ResolvePrincipal, uow=uow, tokens=token_service)
    authenticate_staff = providers.Singleton(
        auth.AuthenticateStaff, uow=uow, hasher=password_hasher
    )
    get_active_staff = providers.Singleton(auth.GetActiveStaff, uow=uow)

    list_products = providers.Singleton(products.ListProducts, uow=uow)
    get_product = providers.Singleton(products.GetProduct, uow=uow)
    create_product = providers.Singleton(products.CreateProduct, uow=uow)
    update_product = providers.Singleton(products.UpdateProduct, uow=uow)
    restock_product = providers.Singleton(products.RestockProduct, uow=uow)

    place_order = providers.Singleton(
        orders.PlaceOrder,
        uow=uow,
        clock=clock,
        currency=settings.provided.currency,
    )
    list_my_orders = providers.Singleton(orders.ListMyOrders, uow=uow)
    get_my_order = providers.Singleton(orders.GetMyOrder, uow=uow)
    cancel_my_order = providers.Singleton(orders.CancelMyOrder, uow=uow, clock=clock)
    list_all_orders = providers.Singleton(orders.ListAllOrders, uow=uow)
    get_order_as_staff = providers.Singleton(orders.GetOrderAsStaff, uow=uow)
    move_order = providers.Singleton(orders.MoveOrder, uow=uow, clock=clock)
    read_my_events = providers.Singleton(events.ReadMyEvents, uow=uow)
    reorder = providers.Singleton(orders.Reorder, uow=uow, place_order=place_order)
    invoice_renderer = providers.Singleton(
        FpdfInvoiceRenderer,
        seller=providers.Singleton(
            Seller,
            name=settings.provided.seller_name,
            address=settings.provided.seller_address,
            vat_id=settings.provided.seller_vat_id,
        ),
        font_path=settings.provided.invoice_font,
    )
    get_my_invoice = providers.Singleton(orders.GetMyInvoice, uow=uow, renderer=invoice_renderer)
    get_invoice_as_staff = providers.Singleton(
        orders.GetInvoiceAsStaff, uow=uow, renderer=invoice_renderer
    )

    list_my_addresses = providers.Singleton(addresses.ListMyAddresses, uow=uow)
    get_my_address = providers.Singleton(addresses.GetMyAddress, uow=uow)
    add_address = providers.Singleton(addresses.AddAddress, uow=uow)
    update_address = providers.Singleton(addresses.UpdateAddress, uow=uow)
    delete_address = providers.Singleton(addresses.DeleteAddress, uow=uow)

    create_user = providers.Singleton(users.CreateUser, uow=uow, hasher=password_hasher)
    set_password = providers.Singleton(
        users.SetPassword, uow=uow, hasher=password_hasher, clock=clock
    )
    change_my_password = providers.Singleton(
        users.ChangeMyPassword, uow=uow, hasher=password_hasher, clock=clock
    )
    set_user_active = providers.Singleton(users.SetUserActive, uow=uow)
    list_users = providers.Singleton(users.ListUsers, uow=uow)
    get_user = providers.Singleton(users.GetUser, uow=uow)

    show_dashboard = providers.Singleton(
        dashboard.ShowDashboard,
        uow=uow,
        clock=clock,
        time_zone=settings.provided.shop_timezone,
        low_stock_threshold=settings.provided.low_stock_threshold,
    )
    export_orders = providers.Singleton(
        dashboard.ExportOrders, uow=uow, clock=clock, time_zone=settings.provided.shop_timezone
    )

    # Webhooks: endpoints for staff, and what `opply worker` runs (docs/architecture.md).
    webhook_store = providers.Singleton(SqlWebhookStore, engine=engine)
    url_policy = providers.Singleton(
        UrlPolicy,
        allow_http=settings.provided.webhook_allow_http,
        allow_private=settings.provided.webhook_allow_private,
    )
    create_webhook = providers.Singleton(
        webhooks.CreateWebhookEndpoint, store=webhook_store, guard=url_policy, clock=clock
    )
    list_webhooks = providers.Singleton(webhooks.ListWebhookEndpoints, store=webhook_store)
    get_webhook = providers.Singleton(webhooks.GetWebhookEndpoint, store=webhook_store)
    change_webhook = providers.Singleton(
        webhooks.ChangeWebhookEndpoint, store=webhook_store, guard=url_policy
    )
    rotate_webhook_secret = providers.Singleton(webhooks.RotateWebhookSecret, store=webhook_store)
    delete_webhook = providers.Singleton(webhooks.DeleteWebhookEndpoint, store=webhook_store)
    list_webhook_deliveries = providers.Singleton(
        webhooks.ListWebhookDeliveries, store=webhook_store
    )
    get_webhook_delivery = providers.Singleton(webhooks.GetWebhookDelivery, store=webhook_store)
    retry_webhook_delivery = providers.Singleton(
        webhooks.RetryWebhookDelivery, store=webhook_store, clock=clock
    )
    webhook_sender = providers.Singleton(
        HttpxWebhookSender, policy=url_policy, timeout=settings.provided.webhook_timeout
    )
    delivery_policy = providers.Singleton(
        webhooks.DeliveryPolicy, schedule=settings.provided.webhook_retry_schedule
    )
    deliver_webhooks = providers.Singleton(
        webhooks.DeliverWebhooks,
        store=webhook_store,
        sender=webhook_sender,
        clock=clock,
        render=providers.Object(render_webhook_event),
        policy=delivery_policy,
        lease=providers.Callable(webhooks.lease_for, settings.provided.webhook_timeout),
    )


if TYPE_CHECKING:
    from opply.entrypoints.config import Settings


def build_container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(providers.Object(settings))
    return container
