"""The container files, checked without a Docker engine: hadolint on the Dockerfile, the compose
file's shape, the lock file against pyproject, and example.env against the settings."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from opply.entrypoints.config import ConfigError, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"


def _compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return parsed


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"

    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_on_a_pinned_slim_python_and_runs_as_non_root() -> None:
    text = DOCKERFILE.read_text()

    assert re.search(r"python:3\.11\.\d+-slim", text), "base image pinned to a patch release"
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    assert "--requirement requirements.lock" in text
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")


def test_the_image_checks_healthz_and_starts_gunicorn_with_its_config_file() -> None:
    text = DOCKERFILE.read_text()

    assert re.search(r"HEALTHCHECK .*\n?.*urllib.*/healthz", text)
    assert 'ENTRYPOINT ["opply-entrypoint"]' in text
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "opply.entrypoints.wsgi:app"]' in text


def test_compose_runs_a_healthy_postgres_before_the_app_on_port_8000() -> None:
    services = _compose()["services"]
    db, app = services["db"], services["app"]

    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in _compose()["volumes"]  # a named volume: data survives `make down`
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["env_file"] == ".env"
    assert app["build"] == "."
    assert any(port.endswith(":8000") for port in app["ports"])
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]


def test_the_lock_file_pins_every_runtime_dependency_within_its_range() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pinned = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[canonicalize_name(name)] = version

    for raw in pyproject["project"]["dependencies"]:
        requirement = Requirement(raw)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is missing from requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements.lock pins {name}=={pinned[name]}, outside {requirement.specifier}: "
            "run `make lock`"
        )


def test_example_env_configures_a_production_start(monkeypatch: pytest.MonkeyPatch) -> None:
    values = dotenv_values(REPO_ROOT / "example.env")
    for name in ("DATABASE_URL", "SECRET_KEY", "OPPLY_ENV", "ACCESS_TOKEN_TTL",
                 "REFRESH_TOKEN_TTL", "CURRENCY", "WEB_CONCURRENCY", "CORS_ORIGINS",
                 "LOG_LEVEL", "TRUSTED_PROXY_HOPS", "POSTGRES_PASSWORD"):  # fmt: skip
        assert name in values, f"example.env does not mention {name}"
    for name, value in values.items():
        monkeypatch.setenv(name, value or "")

    # As copied, the placeholder key stops production with the command that makes a real one;
    # with a real key and limits on Redis (the compose stack has one), it starts.
    with pytest.raises(ConfigError, match=r"placeholder from example\.env.*token_urlsafe"):
        Settings.from_env(load_dotenv_file=False)
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.is_production


def test_secrets_stay_out_of_git_and_of_the_image() -> None:
    gitignore = (REPO_ROOT / ".gitignore").read_text().splitlines()
    dockerignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()

    assert ".env" in gitignore
    assert ".env" in dockerignore
    assert ".git" in dockerignore
