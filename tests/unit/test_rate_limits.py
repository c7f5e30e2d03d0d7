"""What the rate limits rely on from the ``limits`` library, and the store fallback of ours.

If a new ``limits`` release counted differently (a fixed window instead of a moving one, stats
that do not drop with each hit), these fail before the endpoints' own tests are puzzling.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from opply.entrypoints.config import ConfigError, Settings
from opply.entrypoints.limits import RateLimits, Rule


def test_a_moving_window_allows_the_limit_then_refuses_and_counts_down() -> None:
    limiter = MovingWindowRateLimiter(MemoryStorage())
    three = parse("3/minute")
    remaining = []
    for _ in range(3):
        assert limiter.hit(three, "opply", "key")
        remaining.append(limiter.get_window_stats(three, "opply", "key").remaining)
    assert remaining == [2, 1, 0]
    assert not limiter.hit(three, "opply", "key")
    reset_at = limiter.get_window_stats(three, "opply", "key").reset_time
    assert time.time() < reset_at <= time.time() + 60
    assert limiter.hit(three, "opply", "another key")


def _settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "database_url": "sqlite://",
        "secret_key": "x" * 40,
        "access_token_ttl": timedelta(minutes=5),
    }
    return Settings(**{**base, **values})  # type: ignore[arg-type]


def test_a_store_that_fails_is_replaced_by_memory_and_limits_still_hold() -> None:
    limits = RateLimits(
        _settings(ratelimit_storage_uri="redis://127.0.0.1:1/0", login_rate_limit="2/minute")
    )
    rule = Rule(name="test", limit=parse("2/minute"), key=lambda: "k")
    counts = [limits.hit(rule, "k") for _ in range(3)]
    assert [c.allowed for c in counts] == [True, True, False]


@pytest.mark.parametrize("rate", ["often", "10 a minute", "10/minute;20/hour"])
def test_a_rate_that_is_not_one_limit_is_refused_at_start(rate: str) -> None:
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT"):
        RateLimits(_settings(login_rate_limit=rate))
