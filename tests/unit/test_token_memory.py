"""Access tokens verified once are remembered by the process, and still expire on time."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from opply.adapters.clock import SystemClock
from opply.adapters.tokens import JwtTokenService
from opply.domain.errors import InvalidToken

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def _service() -> JwtTokenService:
    return JwtTokenService(SECRET, "opply", timedelta(minutes=15), timedelta(days=7), SystemClock())


def test_a_remembered_access_token_still_expires() -> None:
    tokens = JwtTokenService(
        SECRET, "opply", timedelta(seconds=1), timedelta(days=7), SystemClock(), leeway=timedelta(0)
    )
    token = tokens.issue_access(7, is_staff=True, login="login-1", token_version=0)
    assert tokens.read_access(token).user_id == 7  # verified, then remembered
    assert tokens.read_access(token).is_staff  # answered from memory
    time.sleep(1.2)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_access(token)  # from memory
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_access(token)  # forgotten: through PyJWT


def test_a_tampered_copy_of_a_remembered_token_is_refused() -> None:
    tokens = _service()
    token = tokens.issue_access(7, is_staff=False, login="login-1", token_version=0)
    tokens.read_access(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidToken):
        tokens.read_access(forged)


def test_a_refresh_token_is_never_accepted_as_access_even_after_an_access_hit() -> None:
    tokens = _service()
    tokens.read_access(tokens.issue_access(7, is_staff=False, login="login-1", token_version=0))
    refresh = tokens.issue_refresh(7, "family").token
    with pytest.raises(InvalidToken):
        tokens.read_access(refresh)
