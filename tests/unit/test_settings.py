"""Settings from the environment: the development key and production's required values."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from opply.entrypoints.config import EXAMPLE_SELLER, ConfigError, Settings

STRONG = secrets.token_urlsafe(32)  # made per run


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("SECRET_KEY", "DATABASE_URL", "DATABASE_PASSWORD", "OPPLY_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPPLY_INSTANCE_DIR", str(tmp_path / "instance"))
    for name, value in EXAMPLE_SELLER.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_without_a_secret_key_every_worker_of_a_development_server_shares_one_key(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = Settings.from_env(load_dotenv_file=False)
    second = Settings.from_env(load_dotenv_file=False)  # another worker process, or a restart
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    key_file = tmp_path / "instance" / "dev-secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["dev-secret-key"]


def test_production_refuses_to_start_without_a_strong_secret_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("DATABASE_URL", "postgresql+psycopg2://u:p@db/opply")
    env.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env(load_dotenv_file=False)


def test_production_refuses_to_start_without_a_database_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env(load_dotenv_file=False)
    env.setenv("DATABASE_URL", "postgresql+psycopg2://u:p@db/opply")
    assert Settings.from_env(load_dotenv_file=False).is_production


def test_the_dashboards_settings_default_to_utc_and_10_and_refuse_what_they_cannot_use(
    env: pytest.MonkeyPatch,
) -> None:
    defaults = Settings.from_env(load_dotenv_file=False)
    assert (defaults.shop_timezone, defaults.low_stock_threshold) == ("UTC", 10)
    env.setenv("SHOP_TIMEZONE", "Europe/Berlin")
    env.setenv("LOW_STOCK_THRESHOLD", "25")
    chosen = Settings.from_env(load_dotenv_file=False)
    assert (chosen.shop_timezone, chosen.low_stock_threshold) == ("Europe/Berlin", 25)
    for wrong in ("Mars/Olympus_Mons", "../etc/passwd", "CET+1"):
        env.setenv("SHOP_TIMEZONE", wrong)
        with pytest.raises(ConfigError, match="SHOP_TIMEZONE must be an IANA time zone"):
            Settings.from_env(load_dotenv_file=False)
    env.setenv("SHOP_TIMEZONE", "UTC")
    env.setenv("LOW_STOCK_THRESHOLD", "-1")
    with pytest.raises(ConfigError, match="LOW_STOCK_THRESHOLD must be zero or more"):
        Settings.from_env(load_dotenv_file=False)


def test_a_database_password_given_apart_joins_the_url_whatever_characters_it_holds(
    env: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.engine import make_url

    password = "a@b:c/d%e#f?g h"  # what a generated password may hold, and what URLs mean
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.setenv("DATABASE_URL", "postgresql://opply@proxy.example:5432/opply?sslmode=require")
    env.setenv("DATABASE_PASSWORD", password)

    url = make_url(Settings.from_env(load_dotenv_file=False).database_url)

    assert url.password == password
    assert (url.username, url.host, url.port, url.database) == (
        "opply",
        "proxy.example",
        5432,
        "opply",
    )
    assert url.query == {"sslmode": "require"}
    assert url.drivername == "postgresql+psycopg2"
