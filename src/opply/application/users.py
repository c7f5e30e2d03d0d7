"""User administration use cases (CLI, admin site)."""

from __future__ import annotations

import re

from opply.application.dto import NewUser, Page, PageRequest, UserFilter, UserView
from opply.application.ports import PasswordHasher
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import (
    InvalidUsername,
    PermissionDenied,
    UsernameTaken,
    UserNotFound,
    WeakPassword,
)
from opply.domain.model import User

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but nobody types more; bounds the work
MAX_USERNAME_LENGTH = 150
USERNAME_RE = re.compile(rf"^[A-Za-z0-9_.@+-]{{1,{MAX_USERNAME_LENGTH}}}$")
# The most common passwords of public breach lists; refused outright.
COMMON_PASSWORDS = frozenset(
    [
        "123456",
        "123456789",
        "12345678",
        "password",
        "qwerty123",
        "qwerty1",
        "111111",
        "12345",
        "secret",
        "123123",
        "1234567890",
        "1234567",
        "000000",
        "qwerty",
        "abc123",
        "password1",
        "iloveyou",
        "11111111",
        "dragon",
        "monkey",
        "123qwe",
        "654321",
        "sunshine",
        "princess",
        "letmein",
        "football",
        "baseball",
        "welcome",
        "admin",
        "admin123",
        "passw0rd",
        "trustno1",
        "superman",
        "1q2w3e4r",
        "qwertyuiop",
        "987654321",
        "michael",
        "shadow",
        "master",
        "666666",
        "whatever",
        "changeme",
        "opply123",
        "password123",
        "welcome1",
        "zaq12wsx",
    ]
)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"Password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"Password must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.lower() in COMMON_PASSWORDS:
        raise WeakPassword("This password is too common")


class CreateUser:
    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher) -> None:
        self._uow = uow
        self._hasher = hasher

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


class SetPassword:
    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher) -> None:
        self._uow = uow
        self._hasher = hasher

    def __call__(self, username: str, password: str) -> UserView:
        check_password(password)
        password_hash = self._hasher.hash(password)
        with self._uow.write() as uow:
            user = uow.users.get_by_username(username)
            if user is None:
                raise UserNotFound(username)
            user.password_hash = password_hash
            uow.commit()
        return user_view(user)


class SetUserActive:
    """Deactivate (or reactivate) an account; a deactivated user cannot log in or use tokens."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

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
