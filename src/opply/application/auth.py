"""Authentication use cases: log in, rotate a refresh token, log out, resolve a caller."""

from __future__ import annotations

import uuid

from opply.application.dto import Principal, TokenPair, UserView
from opply.application.passwords import verified_credentials
from opply.application.ports import Clock, PasswordHasher, TokenService
from opply.application.unit_of_work import UnitOfWork, WriteUnitOfWork, retried_if_nothing_kept
from opply.domain.errors import (
    AuthenticationFailed,
    InvalidToken,
    NotAuthenticated,
    PermissionDenied,
)
from opply.domain.model import RefreshToken


def _new_refresh(uow: WriteUnitOfWork, tokens: TokenService, user_id: int, family_id: str) -> str:
    issued = tokens.issue_refresh(user_id, family_id)
    uow.refresh_tokens.add(
        RefreshToken(
            jti=issued.jti,
            family_id=family_id,
            user_id=user_id,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
        )
    )
    return issued.token


class Authenticate:
    """Exchange a username and password for an access and a refresh token."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, tokens: TokenService) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens

    @retried_if_nothing_kept
    def __call__(self, username: str, password: str) -> TokenPair:
        found = verified_credentials(self._uow, self._hasher, username, password)
        new_hash = (
            self._hasher.hash(password) if self._hasher.needs_rehash(found.password_hash) else None
        )
        with self._uow.write() as uow:
            user = uow.users.get(found.id)
            if user is None or not user.is_active or user.password_hash != found.password_hash:
                # Deactivated, or the password changed while we were checking it.
                raise AuthenticationFailed()
            if new_hash is not None:
                user.password_hash = new_hash  # the same password, hashed more strongly
            login = uuid.uuid4().hex
            refresh = _new_refresh(uow, self._tokens, found.id, family_id=login)
            uow.commit()
        access = self._tokens.issue_access(found.id, user.is_staff, login, user.token_version)
        return TokenPair(access=access, refresh=refresh)


class RefreshTokens:
    """Rotate: a refresh token buys a new pair once; replaying a spent one revokes its family."""

    def __init__(self, uow: UnitOfWork, tokens: TokenService, clock: Clock) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, refresh_token: str) -> TokenPair:
        claims = self._tokens.read_refresh(refresh_token)
        now = self._clock.now()
        with self._uow.write() as uow:
            record = uow.refresh_tokens.get_for_update(claims.jti)
            if record is None or record.is_revoked or record.user_id != claims.user_id:
                raise InvalidToken("The refresh token is invalid or has been revoked")
            if record.is_spent:
                # A spent token came back: someone holds a copy. End the whole login.
                uow.refresh_tokens.revoke_family(record.family_id, now)
                uow.commit()
                raise InvalidToken("The refresh token was already used; please log in again")
            user = uow.users.get(claims.user_id)
            if user is None or not user.is_active:
                raise InvalidToken("The account is no longer active")
            record.use(now)
            refresh = _new_refresh(uow, self._tokens, claims.user_id, record.family_id)
            uow.commit()
        access = self._tokens.issue_access(
            claims.user_id, user.is_staff, record.family_id, user.token_version
        )
        return TokenPair(access=access, refresh=refresh)


class RevokeRefreshToken:
    """Log out: the token's whole family stops working. Revoking twice is not an error."""

    def __init__(self, uow: UnitOfWork, tokens: TokenService, clock: Clock) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, refresh_token: str) -> None:
        claims = self._tokens.read_refresh(refresh_token)
        with self._uow.write() as uow:
            record = uow.refresh_tokens.get_for_update(claims.jti)
            if record is None or record.user_id != claims.user_id:
                raise InvalidToken("The refresh token is invalid")
            uow.refresh_tokens.revoke_family(record.family_id, self._clock.now())
            uow.commit()


class ResolvePrincipal:
    """Turn a bearer access token into the caller.

    One small read on every authenticated request, so that what ends a login ends it at once,
    on every worker and every instance, without waiting for its access tokens to expire: a
    deactivated account, a revoked login (log out, or a refresh token presented twice), a new
    password (the user's token version moved on). Staff rights come from the database too, so
    a demotion takes effect at once."""

    def __init__(self, uow: UnitOfWork, tokens: TokenService) -> None:
        self._uow = uow
        self._tokens = tokens

    def __call__(self, access_token: str) -> Principal:
        claims = self._tokens.read_access(access_token)
        with self._uow.read() as reads:
            access = reads.user_access(claims.user_id, login=claims.login)
        if access is None or not access.is_active:
            raise InvalidToken("The account is no longer active")
        if access.login_revoked:
            raise InvalidToken("This login has ended; please log in again")
        if access.token_version != claims.token_version:
            raise InvalidToken("The password has changed since this token was issued")
        return Principal(user_id=claims.user_id, username=access.username, is_staff=access.is_staff)


def require_staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise PermissionDenied("Only staff may do this")


class AuthenticateStaff:
    """Check a staff member's username and password for the admin site.

    Same password check as the API login (dummy hash for unknown users, deactivated accounts
    refused with the same answer). A customer with the right password is ``PermissionDenied``.
    """

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher) -> None:
        self._uow = uow
        self._hasher = hasher

    def __call__(self, username: str, password: str) -> UserView:
        found = verified_credentials(self._uow, self._hasher, username, password)
        if not found.is_staff:
            raise PermissionDenied("Only staff may use the admin site")
        return UserView(id=found.id, username=username, is_staff=True, is_active=True)


class GetActiveStaff:
    """The staff member behind an admin session, re-read on every request.

    A session outlives nothing: deactivation or loss of staff rights ends it at the next click.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, user_id: int) -> UserView:
        with self._uow.read() as reads:
            access = reads.user_access(user_id, login="")
        if access is None or not access.is_active or not access.is_staff:
            raise NotAuthenticated("The session's account is no longer active staff")
        return UserView(id=user_id, username=access.username, is_staff=True, is_active=True)
