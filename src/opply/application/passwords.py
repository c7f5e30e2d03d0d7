"""Passwords: the rules a new one must meet, and the one check of a given one."""

from __future__ import annotations

from opply.application.dto import Credentials
from opply.application.ports import PasswordHasher
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import AuthenticationFailed, WeakPassword

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but nobody types more; bounds the work
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


def verified_credentials(
    uow: UnitOfWork, hasher: PasswordHasher, username: str, password: str
) -> Credentials:
    """The account of ``username`` if ``password`` matches it, else ``AuthenticationFailed``.

    The one password check of the service (API tokens and the admin site). The slow hash check
    runs outside any write transaction, so logins never hold a lock (or, on SQLite, the
    database's single write slot) while argon2 works. A deactivated account fails like a wrong
    password, after the same work.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthenticationFailed()
    with uow.read() as reads:
        found = reads.credentials(username)
    if found is None:
        # Same work as a real check, so timing does not reveal which usernames exist.
        hasher.dummy_verify(password)
        raise AuthenticationFailed()
    if not hasher.verify(found.password_hash, password) or not found.is_active:
        raise AuthenticationFailed()
    return found
