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
    for name in ("SECRET_KEY", "DATABASE_URL", "OPPLY_ENV"):
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
