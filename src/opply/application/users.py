"""User administration use cases (CLI, admin site)."""

from __future__ import annotations

import re
from datetime import datetime

from opply.application.dto import NewUser, Page, PageRequest, UserFilter, UserView
from opply.application.passwords import check_password, verified_credentials
from opply.application.ports import Clock, PasswordHasher
from opply.application.unit_of_work import UnitOfWork, WriteUnitOfWork, retried_if_nothing_kept
from opply.domain.errors import (
    AuthenticationFailed,
    InvalidUsername,
    PermissionDenied,
    UsernameTaken,
    UserNotFound,
    WrongCurrentPassword,
)
from opply.domain.model import User

MAX_USERNAME_LENGTH = 150
USERNAME_RE = re.compile(rf"^[A-Za-z0-9_.@+-]{{1,{MAX_USERNAME_LENGTH}}}$")


class CreateUser:
    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher) -> None:
        self._uow = uow
        self._hasher = hasher

    @retried_if_nothing_kept
    def __call__(self, cmd: NewUser) -> UserView:
        if not USERNAME_RE.fullmatch(cmd.username):  # match's $ allows a trailing newline
            raise InvalidUsername("Username must be 1-150 letters, digits or . @ + - _ characters")
        check_password(cmd.password)
        password_hash = self._hasher.hash(cmd.password)
        with self._uow.write() as uow:
            if uow.users.get_by_username(cmd.username) is not None:
                raise UsernameTaken(cmd.username)
            user = User(username=cmd.username, password_hash=password_hash, is_staff=cmd.is_staff)
            uow.users.add(user)
            uow.commit()
        return user_view(user)


def user_view(user: User) -> UserView:
    assert user.id is not None
    return UserView(
        id=user.id, username=user.username, is_staff=user.is_staff, is_active=user.is_active
    )


def _replace_password(uow: WriteUnitOfWork, user: User, password_hash: str, at: datetime) -> None:
    """A new password ends every login of the user: its refresh tokens are revoked and the
    access tokens issued before carry an old token version, refused from now on."""
    assert user.id is not None
    user.set_password_hash(password_hash)
    uow.refresh_tokens.revoke_all_of_user(user.id, at)


class SetPassword:
    """Staff (or the CLI) reset a user's password."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, username: str, password: str) -> UserView:
        check_password(password)
        password_hash = self._hasher.hash(password)
        with self._uow.write() as uow:
            user = uow.users.get_by_username(username)
            if user is None:
                raise UserNotFound(username)
            _replace_password(uow, user, password_hash, self._clock.now())
            uow.commit()
        return user_view(user)


class ChangeMyPassword:
    """A user changes their own password, proving they know the current one."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

    @retried_if_nothing_kept
    def __call__(self, user_id: int, current_password: str, new_password: str) -> None:
        with self._uow.read() as reads:
            access = reads.user_access(user_id, login="")
        if access is None:
            raise WrongCurrentPassword()
        try:
            found = verified_credentials(self._uow, self._hasher, access.username, current_password)
        except AuthenticationFailed:
            raise WrongCurrentPassword() from None
        check_password(new_password)
        password_hash = self._hasher.hash(new_password)
        with self._uow.write() as uow:
            user = uow.users.get(user_id)
            if user is None or user.password_hash != found.password_hash:
                raise WrongCurrentPassword()  # changed meanwhile, by someone else
            _replace_password(uow, user, password_hash, self._clock.now())
            uow.commit()


class SetUserActive:
    """Deactivate (or reactivate) an account; a deactivated user cannot log in or use tokens."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @retried_if_nothing_kept
    def __call__(
        self, username: str, active: bool, *, acting_username: str | None = None
    ) -> UserView:
        if not active and acting_username == username:
            # Staff locking themselves out leaves nobody who can undo it from the admin.
            raise PermissionDenied("You cannot deactivate your own account while logged in with it")
        with self._uow.write() as uow:
            user = uow.users.get_by_username(username)
            if user is None:
                raise UserNotFound(username)
            if active:
                user.activate()
            else:
                user.deactivate()
            uow.commit()
        return user_view(user)


class ListUsers:
    """Every account, by username, for staff."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, flt: UserFilter, page: PageRequest) -> Page[UserView]:
        with self._uow.read() as reads:
            return reads.user_page(flt, page)


class GetUser:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, username: str) -> UserView:
        with self._uow.read() as reads:
            user = reads.user(username)
        if user is None:
            raise UserNotFound(username)
        return user
