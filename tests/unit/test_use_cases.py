"""Every use case on the in-memory adapters, with fake hashing, a fixed clock and real JWTs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from opply.adapters.memory import (
    FakePasswordHasher,
    FixedClock,
    InMemoryStore,
    InMemoryUnitOfWork,
)
from opply.adapters.tokens import JwtTokenService
from opply.application.auth import (
    Authenticate,
    RefreshTokens,
    ResolvePrincipal,
    RevokeRefreshToken,
    require_staff,
)
from opply.application.dto import (
    NewProduct,
    NewUser,
    PageRequest,
    PlaceOrderCommand,
    Principal,
    ProductChanges,
    ProductFilter,
)
from opply.application.orders import (
    CancelMyOrder,
    GetMyOrder,
    ListMyOrders,
    MoveOrder,
    OrderAction,
    PlaceOrder,
)
from opply.application.products import (
    CreateProduct,
    GetProduct,
    ListProducts,
    RestockProduct,
    UpdateProduct,
)
from opply.application.users import ChangeMyPassword, CreateUser, SetPassword, SetUserActive
from opply.domain.errors import (
    AuthenticationFailed,
    DuplicateProductLine,
    EmptyOrder,
    IdempotencyKeyReused,
    InvalidName,
    InvalidPrice,
    InvalidQuantity,
    InvalidStatusTransition,
    InvalidToken,
    InvalidUsername,
    OrderNotCancellable,
    OrderNotFound,
    OutOfStock,
    PermissionDenied,
    ProductNotFound,
    Shortage,
    SkuTaken,
    UnknownProducts,
    UsernameTaken,
    UserNotFound,
    WeakPassword,
    WrongCurrentPassword,
)
from opply.domain.model import LineRequest, OrderStatus
from opply.entrypoints.api.dumping import compiled_dumper
from opply.entrypoints.api.schemas import OrderSchema

ALICE, BOB = 1, 2
ALL = PageRequest(page=1, page_size=100)


def tamper(token: str, part: int) -> str:
    """Change one character in the middle of a part (0 header, 1 payload, 2 signature)."""
    parts = token.split(".")
    text = parts[part]
    i = len(text) // 2
    parts[part] = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
    return ".".join(parts)


# --- Authentication ------------------------------------------------------------------------------


@pytest.fixture
def authenticate(
    uow: InMemoryUnitOfWork, hasher: FakePasswordHasher, tokens: JwtTokenService
) -> Authenticate:
    return Authenticate(uow, hasher, tokens)


@pytest.fixture
def refresh(uow: InMemoryUnitOfWork, tokens: JwtTokenService, clock: FixedClock) -> RefreshTokens:
    return RefreshTokens(uow, tokens, clock)


@pytest.fixture
def revoke(
    uow: InMemoryUnitOfWork, tokens: JwtTokenService, clock: FixedClock
) -> RevokeRefreshToken:
    return RevokeRefreshToken(uow, tokens, clock)


@pytest.fixture
def resolve(uow: InMemoryUnitOfWork, tokens: JwtTokenService) -> ResolvePrincipal:
    return ResolvePrincipal(uow, tokens)


@pytest.fixture
def set_active(uow: InMemoryUnitOfWork) -> SetUserActive:
    return SetUserActive(uow)


def test_the_right_password_buys_an_access_and_a_refresh_token(
    authenticate: Authenticate,
    resolve: ResolvePrincipal,
    tokens: JwtTokenService,
    add_user: Callable[..., int],
    password: str,
) -> None:
    user_id = add_user("alice", is_staff=True)
    pair = authenticate("alice", password)
    assert resolve(pair.access) == Principal(user_id=user_id, username="alice", is_staff=True)
    assert tokens.read_refresh(pair.refresh).user_id == user_id


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(
    authenticate: Authenticate,
    hasher: FakePasswordHasher,
    add_user: Callable[..., int],
) -> None:
    add_user("alice")
    with pytest.raises(AuthenticationFailed) as wrong_password:
        authenticate("alice", "not the password")
    assert hasher.dummy_calls == 0
    with pytest.raises(AuthenticationFailed) as unknown_user:
        authenticate("mallory", "not the password")
    assert wrong_password.value.detail == unknown_user.value.detail
    assert wrong_password.value.code == unknown_user.value.code == "invalid_credentials"


def test_an_unknown_user_costs_a_dummy_password_check(
    authenticate: Authenticate, hasher: FakePasswordHasher
) -> None:
    with pytest.raises(AuthenticationFailed):
        authenticate("mallory", "whatever it is")
    assert hasher.dummy_calls == 1


def test_a_deactivated_user_cannot_log_in_even_with_the_right_password(
    authenticate: Authenticate, add_user: Callable[..., int], password: str
) -> None:
    add_user("alice", is_active=False)
    with pytest.raises(AuthenticationFailed):
        authenticate("alice", password)


def test_an_overlong_password_is_refused_like_a_wrong_one(
    authenticate: Authenticate, add_user: Callable[..., int]
) -> None:
    add_user("alice")
    with pytest.raises(AuthenticationFailed):
        authenticate("alice", "x" * 1025)


def test_refreshing_rotates_the_pair_and_the_old_refresh_token_stops_working(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    user_id = add_user("alice")
    first = authenticate("alice", password)
    second = refresh(first.refresh)
    assert second.refresh != first.refresh
    assert resolve(second.access) == Principal(user_id=user_id, username="alice", is_staff=False)
    with pytest.raises(InvalidToken):
        refresh(first.refresh)


def test_replaying_a_spent_refresh_token_revokes_its_whole_family(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    stolen = authenticate("alice", password)
    other_login = authenticate("alice", password)
    rotated = refresh(stolen.refresh)
    newest = refresh(rotated.refresh)

    with pytest.raises(InvalidToken):
        refresh(stolen.refresh)
    with pytest.raises(InvalidToken):
        refresh(newest.refresh)
    # Another login is another family and keeps working.
    assert refresh(other_login.refresh).refresh


def test_a_refresh_token_of_a_deactivated_user_is_refused(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    set_active: SetUserActive,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    pair = authenticate("alice", password)
    set_active("alice", active=False)
    with pytest.raises(InvalidToken):
        refresh(pair.refresh)


def test_a_revoked_refresh_token_and_its_rotations_stop_working(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    revoke: RevokeRefreshToken,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    first = authenticate("alice", password)
    second = refresh(first.refresh)
    revoke(second.refresh)
    with pytest.raises(InvalidToken):
        refresh(second.refresh)
    revoke(second.refresh)  # logging out twice is not an error


def test_revoking_one_login_leaves_another_working(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    revoke: RevokeRefreshToken,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    phone = authenticate("alice", password)
    tablet = authenticate("alice", password)
    revoke(phone.refresh)
    with pytest.raises(InvalidToken):
        refresh(phone.refresh)
    assert refresh(tablet.refresh).access


def test_an_access_token_cannot_be_used_as_a_refresh_token(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    revoke: RevokeRefreshToken,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    pair = authenticate("alice", password)
    with pytest.raises(InvalidToken):
        refresh(pair.access)
    with pytest.raises(InvalidToken):
        revoke(pair.access)


def test_a_refresh_token_cannot_be_used_as_an_access_token(
    authenticate: Authenticate,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    pair = authenticate("alice", password)
    with pytest.raises(InvalidToken):
        resolve(pair.refresh)


def test_expired_tokens_are_refused(
    token_clock: FixedClock,
    token_service_at: Callable[[FixedClock], JwtTokenService],
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
) -> None:
    user_id = add_user("alice")
    yesterday = token_service_at(FixedClock(token_clock.now() - timedelta(days=1)))
    with pytest.raises(InvalidToken, match="expired"):
        resolve(yesterday.issue_access(user_id, is_staff=False, login="login-1", token_version=0))
    with pytest.raises(InvalidToken, match="expired"):
        refresh(yesterday.issue_refresh(user_id, "family").token)


@pytest.mark.parametrize("part", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_tampered_token_is_refused(
    part: int,
    authenticate: Authenticate,
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    pair = authenticate("alice", password)
    with pytest.raises(InvalidToken):
        resolve(tamper(pair.access, part))
    with pytest.raises(InvalidToken):
        refresh(tamper(pair.refresh, part))
    assert resolve(pair.access).user_id  # the untouched token still works


def test_a_token_signed_with_another_secret_is_refused(
    token_clock: FixedClock,
    token_service_at: Callable[..., JwtTokenService],
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
) -> None:
    user_id = add_user("alice")
    forger = token_service_at(token_clock, secret="another-secret-that-is-32-bytes-or-more")
    with pytest.raises(InvalidToken):
        resolve(forger.issue_access(user_id, is_staff=True, login="login-1", token_version=0))


def test_a_token_service_refuses_a_short_secret(token_clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        JwtTokenService("too-short", "iss", timedelta(minutes=5), timedelta(days=1), token_clock)


def test_a_deactivated_user_is_refused_with_a_still_valid_access_token(
    authenticate: Authenticate,
    resolve: ResolvePrincipal,
    set_active: SetUserActive,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    pair = authenticate("alice", password)
    set_active("alice", active=False)
    with pytest.raises(InvalidToken):
        resolve(pair.access)


def test_staff_rights_come_from_the_account_not_the_token(
    tokens: JwtTokenService, resolve: ResolvePrincipal, add_user: Callable[..., int]
) -> None:
    user_id = add_user("alice", is_staff=False)
    principal = resolve(
        tokens.issue_access(user_id, is_staff=True, login="login-1", token_version=0)
    )
    assert principal == Principal(user_id=user_id, username="alice", is_staff=False)
    with pytest.raises(PermissionDenied):
        require_staff(principal)


def test_a_token_of_a_user_that_no_longer_exists_is_refused(
    tokens: JwtTokenService, resolve: ResolvePrincipal
) -> None:
    with pytest.raises(InvalidToken):
        resolve(tokens.issue_access(999, is_staff=False, login="login-1", token_version=0))


def test_staff_pass_the_staff_check() -> None:
    require_staff(Principal(user_id=1, username="boss", is_staff=True))


# --- Products ------------------------------------------------------------------------------------


@pytest.fixture
def list_products(uow: InMemoryUnitOfWork) -> ListProducts:
    return ListProducts(uow)


@pytest.fixture
def catalogue(add_product: Callable[..., int]) -> dict[str, int]:
    return {
        "oat": add_product("Oat flour 25kg", "12.50", 40),
        "rye": add_product("Rye flour 25kg", "14.00", 0),
        "oatmeal": add_product("Fine OATMEAL 5kg", "6.10", 3),
        "sugar": add_product("Cane sugar 10kg", "9.99", 12),
    }


def test_products_are_listed_by_id_with_the_total_count(
    list_products: ListProducts, catalogue: dict[str, int]
) -> None:
    page = list_products(ProductFilter(), ALL)
    assert [p.id for p in page.items] == sorted(catalogue.values())
    assert page.total == 4
    assert page.items[0].name == "Oat flour 25kg"
    assert page.items[0].price == Decimal("12.50")
    assert page.items[0].quantity_in_stock == 40


def test_searching_products_matches_names_regardless_of_case(
    list_products: ListProducts, catalogue: dict[str, int]
) -> None:
    page = list_products(ProductFilter(search="oAt"), ALL)
    assert [p.id for p in page.items] == [catalogue["oat"], catalogue["oatmeal"]]
    assert page.total == 2


def test_listing_only_products_in_stock_leaves_out_empty_shelves(
    list_products: ListProducts, catalogue: dict[str, int]
) -> None:
    page = list_products(ProductFilter(in_stock=True), ALL)
    assert catalogue["rye"] not in [p.id for p in page.items]
    assert page.total == 3


def test_search_and_in_stock_combine(
    list_products: ListProducts, catalogue: dict[str, int]
) -> None:
    page = list_products(ProductFilter(search="flour", in_stock=True), ALL)
    assert [p.id for p in page.items] == [catalogue["oat"]]


def test_products_are_paged_and_a_page_past_the_end_is_empty(
    list_products: ListProducts, catalogue: dict[str, int]
) -> None:
    ids = sorted(catalogue.values())
    first = list_products(ProductFilter(), PageRequest(page=1, page_size=3))
    second = list_products(ProductFilter(), PageRequest(page=2, page_size=3))
    beyond = list_products(ProductFilter(), PageRequest(page=3, page_size=3))
    assert [p.id for p in first.items] == ids[:3]
    assert [p.id for p in second.items] == ids[3:]
    assert list(beyond.items) == []
    assert first.total == second.total == beyond.total == 4


def test_getting_an_unknown_product_is_not_found(uow: InMemoryUnitOfWork) -> None:
    with pytest.raises(ProductNotFound):
        GetProduct(uow)(404)


def test_a_created_product_can_be_read_back(uow: InMemoryUnitOfWork) -> None:
    created = CreateProduct(uow)(
        NewProduct(name="Oat flour 25kg", price=Decimal("12.5"), quantity_in_stock=40)
    )
    assert created.price == Decimal("12.50")
    assert GetProduct(uow)(created.id) == created


def test_creating_a_product_with_a_bad_price_stores_nothing(
    uow: InMemoryUnitOfWork, list_products: ListProducts
) -> None:
    with pytest.raises(InvalidPrice):
        CreateProduct(uow)(
            NewProduct(name="Oat flour", price=Decimal("-1.00"), quantity_in_stock=1)
        )
    assert list_products(ProductFilter(), ALL).total == 0


def test_updating_a_product_changes_only_the_fields_given(
    uow: InMemoryUnitOfWork, add_product: Callable[..., int]
) -> None:
    pid = add_product("Oat flour", "12.50", 40)
    updated = UpdateProduct(uow)(pid, ProductChanges(price=Decimal("13.00")))
    assert (updated.name, updated.price, updated.quantity_in_stock) == (
        "Oat flour",
        Decimal("13.00"),
        40,
    )
    updated = UpdateProduct(uow)(pid, ProductChanges(name="Rye", quantity_in_stock=0))
    assert GetProduct(uow)(pid) == updated
    assert (updated.name, updated.price, updated.quantity_in_stock) == ("Rye", Decimal("13.00"), 0)


def test_an_update_with_one_bad_field_changes_nothing(
    uow: InMemoryUnitOfWork, add_product: Callable[..., int]
) -> None:
    pid = add_product("Oat flour", "12.50", 40)
    with pytest.raises(InvalidQuantity):
        UpdateProduct(uow)(pid, ProductChanges(name="Rye", quantity_in_stock=-1))
    with pytest.raises(InvalidName):
        UpdateProduct(uow)(pid, ProductChanges(price=Decimal("1.00"), name=" "))
    product = GetProduct(uow)(pid)
    assert (product.name, product.price, product.quantity_in_stock) == (
        "Oat flour",
        Decimal("12.50"),
        40,
    )


def test_updating_an_unknown_product_is_not_found(uow: InMemoryUnitOfWork) -> None:
    with pytest.raises(ProductNotFound):
        UpdateProduct(uow)(404, ProductChanges(name="x"))


def test_restocking_adds_to_the_stock(
    uow: InMemoryUnitOfWork, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=4)
    assert RestockProduct(uow)(pid, 6).quantity_in_stock == 10
    assert stock_of(pid) == 10


def test_restocking_by_zero_or_an_unknown_product_is_refused(
    uow: InMemoryUnitOfWork, add_product: Callable[..., int], stock_of: Callable[[int], int]
) -> None:
    pid = add_product(stock=4)
    with pytest.raises(InvalidQuantity):
        RestockProduct(uow)(pid, 0)
    with pytest.raises(ProductNotFound):
        RestockProduct(uow)(404, 1)
    assert stock_of(pid) == 4


# --- Orders --------------------------------------------------------------------------------------


@pytest.fixture
def three(add_product: Callable[..., int]) -> list[int]:
    """Three products: 5 at 12.50, 1 at 0.10, 9 at 3.33."""
    return [
        add_product("Oat flour", "12.50", 5),
        add_product("Salt", "0.10", 1),
        add_product("Yeast", "3.33", 9),
    ]


def order_of(customer: int, *pairs: tuple[int, int], key: str | None = None) -> PlaceOrderCommand:
    return PlaceOrderCommand(customer_id=customer, lines=lines(*pairs), idempotency_key=key)


def lines(*pairs: tuple[int, int]) -> list[LineRequest]:
    return [LineRequest(product_id=pid, quantity=qty) for pid, qty in pairs]


@pytest.fixture(autouse=True)
def alice_and_bob(request: pytest.FixtureRequest, add_user: Callable[..., int]) -> None:
    """The customers of the order tests (ids ALICE and BOB)."""
    if {"three", "place_order", "order_for"} & set(request.fixturenames):
        assert (add_user("alice"), add_user("bob")) == (ALICE, BOB)


def test_placing_an_order_takes_stock_and_returns_the_order(
    place_order: PlaceOrder,
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    oat, salt, yeast = three
    placed = place_order(order_of(ALICE, (yeast, 3), (oat, 2)))
    assert not placed.replayed
    view = GetMyOrder(uow)(ALICE, placed.order_id)
    assert view.status == "placed"
    assert view.created_at == clock.now()
    assert view.currency == "EUR"
    assert [(ln.product_id, ln.product_name, ln.unit_price, ln.quantity) for ln in view.lines] == [
        (oat, "Oat flour", Decimal("12.50"), 2),
        (yeast, "Yeast", Decimal("3.33"), 3),
    ]
    assert [ln.line_total for ln in view.lines] == [Decimal("25.00"), Decimal("9.99")]
    assert view.total == Decimal("34.99")
    assert stocks() == {oat: 3, salt: 1, yeast: 6}
    # The answer is the order as reading it back gives it (but for who placed it).
    assert placed.order == view._replace(customer=None)
    assert compiled_dumper(OrderSchema)(placed.order)["total"] == "34.99"


def test_an_order_naming_an_unknown_product_changes_nothing(
    place_order: PlaceOrder,
    uow: InMemoryUnitOfWork,
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    before = stocks()
    with pytest.raises(UnknownProducts) as caught:
        place_order(order_of(ALICE, (three[0], 1), (404, 1)))
    assert caught.value.product_ids == (404,)
    assert stocks() == before
    assert ListMyOrders(uow)(ALICE, None, ALL).total == 0


def test_an_order_that_exceeds_stock_on_one_line_of_three_changes_nothing(
    place_order: PlaceOrder,
    uow: InMemoryUnitOfWork,
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    oat, salt, yeast = three
    before = stocks()
    with pytest.raises(OutOfStock) as caught:
        place_order(order_of(ALICE, (oat, 5), (salt, 2), (yeast, 9)))
    assert caught.value.shortages == (Shortage(product_id=salt, requested=2, available=1),)
    assert stocks() == before
    assert ListMyOrders(uow)(ALICE, None, ALL).total == 0


@pytest.mark.parametrize(
    ("pairs", "error"),
    [((), EmptyOrder), (((1, 1), (1, 2)), DuplicateProductLine), (((1, 0),), InvalidQuantity)],
)
def test_a_malformed_order_is_refused_before_touching_stock(
    pairs: tuple[tuple[int, int], ...],
    error: type[Exception],
    place_order: PlaceOrder,
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    before = stocks()
    with pytest.raises(error):
        place_order(order_of(ALICE, *pairs, key="k"))
    assert stocks() == before


def test_a_retry_with_the_same_key_replays_the_first_order_and_takes_no_more_stock(
    place_order: PlaceOrder,
    uow: InMemoryUnitOfWork,
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    oat, _, yeast = three
    first = place_order(order_of(ALICE, (oat, 2), (yeast, 1), key="key-1"))
    after_first = stocks()
    # The same lines in another order are the same request.
    again = place_order(order_of(ALICE, (yeast, 1), (oat, 2), key="key-1"))
    assert again.replayed
    assert (again.order_id, again.order) == (first.order_id, first.order)
    assert stocks() == after_first
    assert ListMyOrders(uow)(ALICE, None, ALL).total == 1


def test_the_same_key_with_a_different_body_is_refused(
    place_order: PlaceOrder, three: list[int], stocks: Callable[[], dict[int, int]]
) -> None:
    oat, _, yeast = three
    place_order(order_of(ALICE, (oat, 2), key="key-1"))
    after_first = stocks()
    with pytest.raises(IdempotencyKeyReused):
        place_order(order_of(ALICE, (oat, 3), key="key-1"))
    with pytest.raises(IdempotencyKeyReused):
        place_order(order_of(ALICE, (oat, 2), (yeast, 1), key="key-1"))
    assert stocks() == after_first


def test_idempotency_keys_belong_to_one_customer(
    place_order: PlaceOrder, three: list[int], stock_of: Callable[[int], int]
) -> None:
    oat = three[0]
    alices = place_order(order_of(ALICE, (oat, 2), key="shared"))
    bobs = place_order(order_of(BOB, (oat, 2), key="shared"))
    assert not bobs.replayed
    assert bobs.order_id != alices.order_id
    assert stock_of(oat) == 1


def test_a_failed_order_does_not_use_up_its_key(
    place_order: PlaceOrder, uow: InMemoryUnitOfWork, three: list[int]
) -> None:
    salt = three[1]
    with pytest.raises(OutOfStock):
        place_order(order_of(ALICE, (salt, 3), key="key-1"))
    RestockProduct(uow)(salt, 5)
    placed = place_order(order_of(ALICE, (salt, 3), key="key-1"))
    assert not placed.replayed
    assert placed.order.lines[0].quantity == 3


def test_an_order_keeps_its_price_and_name_after_the_product_changes(
    place_order: PlaceOrder, uow: InMemoryUnitOfWork, three: list[int]
) -> None:
    oat = three[0]
    placed = place_order(order_of(ALICE, (oat, 2)))
    UpdateProduct(uow)(oat, ProductChanges(name="Spelt", price=Decimal("99.99")))
    line = GetMyOrder(uow)(ALICE, placed.order_id).lines[0]
    assert (line.product_name, line.unit_price, line.line_total) == (
        "Oat flour",
        Decimal("12.50"),
        Decimal("25.00"),
    )


def test_my_orders_are_listed_newest_first_and_never_another_customers(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
) -> None:
    oat, _, yeast = three
    oldest = order_for(ALICE, lines((oat, 1)))
    clock.advance(minutes=1)
    order_for(BOB, lines((oat, 1)))
    clock.advance(minutes=1)
    same_time_a = order_for(ALICE, lines((yeast, 1)))
    same_time_b = order_for(ALICE, lines((yeast, 1)))

    page = ListMyOrders(uow)(ALICE, None, ALL)
    assert [o.id for o in page.items] == [same_time_b, same_time_a, oldest]
    assert page.total == 3
    assert ListMyOrders(uow)(BOB, None, ALL).total == 1


def test_my_orders_are_paged_without_repeating_or_skipping(
    uow: InMemoryUnitOfWork, order_for: Callable[..., int], three: list[int]
) -> None:
    yeast = three[2]
    placed = [order_for(ALICE, lines((yeast, 1))) for _ in range(5)]
    pages = [ListMyOrders(uow)(ALICE, None, PageRequest(page=n, page_size=2)) for n in (1, 2, 3)]
    seen = [o.id for p in pages for o in p.items]
    assert seen == list(reversed(placed))


def test_my_orders_can_be_filtered_by_status(
    uow: InMemoryUnitOfWork, clock: FixedClock, order_for: Callable[..., int], three: list[int]
) -> None:
    oat = three[0]
    kept = order_for(ALICE, lines((oat, 1)))
    cancelled = order_for(ALICE, lines((oat, 1)))
    CancelMyOrder(uow, clock)(ALICE, cancelled)
    listed = ListMyOrders(uow)
    assert [o.id for o in listed(ALICE, OrderStatus.PLACED, ALL).items] == [kept]
    assert [o.id for o in listed(ALICE, OrderStatus.CANCELLED, ALL).items] == [cancelled]
    assert listed(ALICE, None, ALL).total == 2


def test_another_customers_order_is_not_found(
    uow: InMemoryUnitOfWork, order_for: Callable[..., int], three: list[int]
) -> None:
    alices = order_for(ALICE, lines((three[0], 1)))
    with pytest.raises(OrderNotFound) as foreign:
        GetMyOrder(uow)(BOB, alices)
    with pytest.raises(OrderNotFound) as missing:
        GetMyOrder(uow)(BOB, 404)
    assert foreign.value.code == missing.value.code


def test_cancelling_my_order_puts_the_stock_back(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    oat, salt, _ = three
    before = stocks()
    order_id = order_for(ALICE, lines((oat, 5), (salt, 1)))
    view = CancelMyOrder(uow, clock)(ALICE, order_id)
    assert view.status == "cancelled"
    assert GetMyOrder(uow)(ALICE, order_id).status == "cancelled"
    assert stocks() == before


def test_cancelling_my_order_twice_is_refused_and_restocks_once(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
    stock_of: Callable[[int], int],
) -> None:
    oat = three[0]
    order_id = order_for(ALICE, lines((oat, 2)))
    CancelMyOrder(uow, clock)(ALICE, order_id)
    with pytest.raises(OrderNotCancellable):
        CancelMyOrder(uow, clock)(ALICE, order_id)
    assert stock_of(oat) == 5


def test_another_customer_cannot_cancel_my_order(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
    stock_of: Callable[[int], int],
) -> None:
    oat = three[0]
    order_id = order_for(ALICE, lines((oat, 2)))
    with pytest.raises(OrderNotFound):
        CancelMyOrder(uow, clock)(BOB, order_id)
    assert stock_of(oat) == 3
    assert GetMyOrder(uow)(ALICE, order_id).status == "placed"


# --- Users ---------------------------------------------------------------------------------------


@pytest.fixture
def create_user(uow: InMemoryUnitOfWork, hasher: FakePasswordHasher) -> CreateUser:
    return CreateUser(uow, hasher)


def test_a_created_user_can_log_in_and_their_password_is_stored_hashed(
    create_user: CreateUser,
    authenticate: Authenticate,
    resolve: ResolvePrincipal,
    store: InMemoryStore,
) -> None:
    view = create_user(
        NewUser(username="bob.smith@example", password="a long passphrase", is_staff=True)
    )
    assert (view.username, view.is_staff, view.is_active) == ("bob.smith@example", True, True)
    stored = store.tables.users[view.id].password_hash
    assert "a long passphrase" not in stored
    pair = authenticate("bob.smith@example", "a long passphrase")
    assert resolve(pair.access) == Principal(
        user_id=view.id, username="bob.smith@example", is_staff=True
    )


@pytest.mark.parametrize("weak", ["short1!", "password123", "PassWord1", "Qwertyuiop", "x" * 1025])
def test_a_short_common_or_overlong_password_is_refused(
    weak: str, create_user: CreateUser, store: InMemoryStore
) -> None:
    with pytest.raises(WeakPassword):
        create_user(NewUser(username="bob", password=weak))
    assert store.tables.users == {}


def test_a_taken_username_is_refused(
    create_user: CreateUser, add_user: Callable[..., int], store: InMemoryStore
) -> None:
    add_user("alice")
    with pytest.raises(UsernameTaken):
        create_user(NewUser(username="alice", password="another long passphrase"))
    assert len(store.tables.users) == 1


@pytest.mark.parametrize("username", ["", "has space", "x" * 151, "alice\n", "émile", "semi;colon"])
def test_a_bad_username_is_refused(
    username: str, create_user: CreateUser, store: InMemoryStore
) -> None:
    with pytest.raises(InvalidUsername):
        create_user(NewUser(username=username, password="a long passphrase"))
    assert store.tables.users == {}


def test_a_new_password_replaces_the_old_one(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    hasher: FakePasswordHasher,
    authenticate: Authenticate,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    SetPassword(uow, hasher, clock)("alice", "a brand new passphrase")
    with pytest.raises(AuthenticationFailed):
        authenticate("alice", password)
    assert authenticate("alice", "a brand new passphrase").access


def test_setting_a_weak_password_or_one_for_nobody_is_refused(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    hasher: FakePasswordHasher,
    authenticate: Authenticate,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    with pytest.raises(WeakPassword):
        SetPassword(uow, hasher, clock)("alice", "letmein")
    with pytest.raises(UserNotFound):
        SetPassword(uow, hasher, clock)("nobody", "a brand new passphrase")
    assert authenticate("alice", password).access


def test_a_deactivated_user_can_be_reactivated(
    set_active: SetUserActive,
    authenticate: Authenticate,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    assert set_active("alice", active=False).is_active is False
    with pytest.raises(AuthenticationFailed):
        authenticate("alice", password)
    assert set_active("alice", active=True).is_active is True
    assert authenticate("alice", password).access


def test_activating_an_unknown_user_is_not_found(set_active: SetUserActive) -> None:
    with pytest.raises(UserNotFound):
        set_active("nobody", active=False)


def test_staff_cannot_deactivate_their_own_account(
    set_active: SetUserActive, add_user: Callable[..., int]
) -> None:
    add_user("boss", is_staff=True)
    with pytest.raises(PermissionDenied):
        set_active("boss", active=False, acting_username="boss")
    add_user("other")
    assert set_active("other", active=False, acting_username="boss").is_active is False


# --- Ending a login: every access token of it is refused at once ---------------------------------


def test_a_spent_refresh_token_presented_again_ends_the_access_tokens_of_its_login(
    authenticate: Authenticate,
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    stolen = authenticate("alice", password)
    other_login = authenticate("alice", password)
    rotated = refresh(stolen.refresh)
    assert resolve(rotated.access).username == "alice"
    with pytest.raises(InvalidToken):
        refresh(stolen.refresh)  # the copy comes back: the whole login ends
    for access in (stolen.access, rotated.access):
        with pytest.raises(InvalidToken, match="login has ended"):
            resolve(access)
    assert resolve(other_login.access).username == "alice"


def test_logging_out_ends_the_access_tokens_of_that_login_only(
    authenticate: Authenticate,
    revoke: RevokeRefreshToken,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    phone, laptop = authenticate("alice", password), authenticate("alice", password)
    revoke(phone.refresh)
    with pytest.raises(InvalidToken):
        resolve(phone.access)
    assert resolve(laptop.access).username == "alice"


def test_a_password_reset_by_staff_ends_every_login_of_the_user(
    uow: InMemoryUnitOfWork,
    hasher: FakePasswordHasher,
    clock: FixedClock,
    authenticate: Authenticate,
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    add_user("alice")
    add_user("bob")
    phone, laptop = authenticate("alice", password), authenticate("alice", password)
    bobs = authenticate("bob", password)
    SetPassword(uow, hasher, clock)("alice", "a brand new passphrase")
    for pair in (phone, laptop):
        with pytest.raises(InvalidToken):
            resolve(pair.access)
        with pytest.raises(InvalidToken):
            refresh(pair.refresh)
    assert resolve(bobs.access).username == "bob"
    fresh = authenticate("alice", "a brand new passphrase")
    assert resolve(fresh.access).username == "alice"


# --- The customer's account ----------------------------------------------------------------------


@pytest.fixture
def change_password(
    uow: InMemoryUnitOfWork, hasher: FakePasswordHasher, clock: FixedClock
) -> ChangeMyPassword:
    return ChangeMyPassword(uow, hasher, clock)


def test_changing_ones_password_ends_every_earlier_token_and_the_new_one_works(
    change_password: ChangeMyPassword,
    tokens: JwtTokenService,
    authenticate: Authenticate,
    refresh: RefreshTokens,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    user_id = add_user("alice")
    before = authenticate("alice", password)
    change_password(user_id, password, "a brand new passphrase")
    with pytest.raises(InvalidToken):
        resolve(before.access)
    with pytest.raises(InvalidToken):
        refresh(before.refresh)
    with pytest.raises(AuthenticationFailed):
        authenticate("alice", password)
    assert resolve(authenticate("alice", "a brand new passphrase").access).user_id == user_id
    # A token of a login never revoked, but issued before the change, is refused too.
    earlier = tokens.issue_access(user_id, is_staff=False, login="unrevoked", token_version=0)
    with pytest.raises(InvalidToken, match="password has changed"):
        resolve(earlier)


def test_a_wrong_current_password_is_refused_and_changes_nothing(
    change_password: ChangeMyPassword,
    authenticate: Authenticate,
    resolve: ResolvePrincipal,
    add_user: Callable[..., int],
    password: str,
) -> None:
    user_id = add_user("alice")
    before = authenticate("alice", password)
    with pytest.raises(WrongCurrentPassword) as caught:
        change_password(user_id, "not the password", "a brand new passphrase")
    assert (caught.value.status, caught.value.code) == (403, "invalid_credentials")
    with pytest.raises(WeakPassword):
        change_password(user_id, password, "password")
    assert resolve(before.access).user_id == user_id
    assert authenticate("alice", password).access


# --- Products of v1.1 ----------------------------------------------------------------------------


def test_a_product_created_without_a_sku_gets_p_and_its_id(uow: InMemoryUnitOfWork) -> None:
    created = CreateProduct(uow)(NewProduct(name="Oat flour", price=Decimal("1.00")))
    assert created.sku == f"P-{created.id:06d}"
    assert (created.unit, created.description, created.vat_rate) == ("unit", "", Decimal("0.00"))


def test_a_sku_is_unique_ignoring_case_on_create_and_on_edit(
    uow: InMemoryUnitOfWork, list_products: ListProducts
) -> None:
    first = CreateProduct(uow)(NewProduct(name="Oat", price=Decimal("1.00"), sku="OAT-1"))
    with pytest.raises(SkuTaken):
        CreateProduct(uow)(NewProduct(name="Other", price=Decimal("1.00"), sku="oat-1"))
    second = CreateProduct(uow)(NewProduct(name="Rye", price=Decimal("1.00"), sku="RYE-1"))
    with pytest.raises(SkuTaken):
        UpdateProduct(uow)(second.id, ProductChanges(sku="Oat-1", name="Renamed"))
    assert GetProduct(uow)(second.id).name == "Rye"  # nothing of the edit stayed
    assert list_products(ProductFilter(), ALL).total == 2
    assert UpdateProduct(uow)(first.id, ProductChanges(sku="oat-1")).sku == "oat-1"  # its own


def test_the_catalogue_search_matches_the_name_or_the_sku(
    uow: InMemoryUnitOfWork, list_products: ListProducts
) -> None:
    for name, sku in (("Oat flour", "FL-1"), ("Rye", "oat-rye"), ("Salt", "SLT")):
        CreateProduct(uow)(NewProduct(name=name, price=Decimal("1.00"), sku=sku))
    found = list_products(ProductFilter(search="OAT"), ALL)
    assert [p.name for p in found.items] == ["Oat flour", "Rye"]


# --- The order's life, for staff -----------------------------------------------------------------


def test_staff_ship_then_deliver_an_order_and_the_customer_sees_it(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    order_id = order_for(ALICE, lines((three[0], 2)))
    after_order = stocks()
    clock.advance(hours=1)
    shipped = MoveOrder(uow, clock)(order_id, OrderAction.SHIP)
    assert (shipped.status, shipped.shipped_at) == (OrderStatus.SHIPPED, clock.now())
    assert shipped.customer is not None
    assert shipped.customer.username == "alice"
    clock.advance(days=1)
    delivered = MoveOrder(uow, clock)(order_id, OrderAction.DELIVER)
    mine = GetMyOrder(uow)(ALICE, order_id)
    assert (mine.status, mine.delivered_at) == (OrderStatus.DELIVERED, clock.now())
    assert delivered.shipped_at == mine.shipped_at
    assert stocks() == after_order  # only placing and cancelling move stock
    with pytest.raises(OrderNotCancellable):
        CancelMyOrder(uow, clock)(ALICE, order_id)
    with pytest.raises(InvalidStatusTransition):
        MoveOrder(uow, clock)(order_id, OrderAction.SHIP)


def test_a_shipped_order_cannot_be_cancelled_by_anyone(
    uow: InMemoryUnitOfWork,
    clock: FixedClock,
    order_for: Callable[..., int],
    three: list[int],
    stocks: Callable[[], dict[int, int]],
) -> None:
    order_id = order_for(ALICE, lines((three[0], 2)))
    MoveOrder(uow, clock)(order_id, OrderAction.SHIP)
    before = stocks()
    with pytest.raises(OrderNotCancellable):
        MoveOrder(uow, clock)(order_id, OrderAction.CANCEL)
    with pytest.raises(OrderNotFound):
        MoveOrder(uow, clock)(order_id + 100, OrderAction.SHIP)
    assert stocks() == before
    assert GetMyOrder(uow)(ALICE, order_id).cancelled_at is None


def test_an_order_snapshots_sku_unit_and_vat_and_adds_them_up(
    place_order: PlaceOrder, uow: InMemoryUnitOfWork
) -> None:
    oat = CreateProduct(uow)(
        NewProduct(
            name="Oat flour 25kg",
            price=Decimal("12.50"),
            sku="OAT-FL-25",
            unit="bag",
            vat_rate=Decimal("7.00"),
            quantity_in_stock=10,
        )
    ).id
    salt = CreateProduct(uow)(
        NewProduct(
            name="Salt", price=Decimal("0.05"), vat_rate=Decimal("10.00"), quantity_in_stock=5
        )
    ).id
    placed = place_order(order_of(ALICE, (oat, 3), (salt, 1)))
    body = compiled_dumper(OrderSchema)(placed.order)
    assert body["lines"][0] == {
        "product_id": oat,
        "sku": "OAT-FL-25",
        "product_name": "Oat flour 25kg",
        "unit": "bag",
        "unit_price": "12.50",
        "vat_rate": "7.00",
        "quantity": 3,
        "line_net": "37.50",
        "line_vat": "2.63",
        "line_total": "40.13",
    }
    assert (body["lines"][1]["line_vat"], body["lines"][1]["line_total"]) == ("0.01", "0.06")
    assert (body["subtotal"], body["vat_total"], body["total"]) == ("37.55", "2.64", "40.19")
    UpdateProduct(uow)(oat, ProductChanges(vat_rate=Decimal("19.00"), sku="OAT-NEW", unit="sack"))
    again = GetMyOrder(uow)(ALICE, placed.order_id)
    assert (again.lines[0].sku, again.lines[0].unit, again.total) == (
        "OAT-FL-25",
        "bag",
        Decimal("40.19"),
    )


def test_an_answer_kept_in_the_wire_format_by_an_older_release_replays_the_same_order(
    place_order: PlaceOrder, store: InMemoryStore, three: list[int]
) -> None:
    """Releases before 1.2 kept the JSON they sent for a key; a retry reaching this release
    during a rolling deploy gets the same order back."""
    oat, _, yeast = three
    first = place_order(order_of(ALICE, (oat, 2), (yeast, 1), key="key-old"))
    record = store.tables.idempotency[(ALICE, "key-old")]
    assert record is not None
    wire = compiled_dumper(OrderSchema)(first.order)
    store.tables.idempotency[(ALICE, "key-old")] = dataclasses.replace(record, response=wire)
    again = place_order(order_of(ALICE, (oat, 2), (yeast, 1), key="key-old"))
    assert again.replayed
    assert again.order == first.order
    assert compiled_dumper(OrderSchema)(again.order) == wire
