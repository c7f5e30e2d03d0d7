"""The container files, checked without a Docker engine: hadolint on the Dockerfile, the compose
file's shape, the lock file against pyproject, and example.env against the settings."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tomllib
from dataclasses import fields
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
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# What the app's container reads besides the settings: the image's start command, gunicorn.conf.py
# and the environment's name (the settings' `env`).
APP_PROCESS_VARIABLES = {
    "OPPLY_ENV",
    "OPPLY_MIGRATE_ON_START",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
}


def _compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
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


def test_the_dockerfile_builds_without_fetching_a_frontend_from_a_registry() -> None:
    # A `# syntax=` parser directive makes BuildKit pull that frontend image first.
    directives = re.findall(r"^#\s*syntax\s*=.*$", DOCKERFILE.read_text(), re.MULTILINE | re.I)

    assert directives == []


def test_the_image_checks_healthz_and_starts_gunicorn_with_its_config_file() -> None:
    text = DOCKERFILE.read_text()

    assert re.search(r"HEALTHCHECK .*\n?.*urllib.*/healthz", text)
    assert 'ENTRYPOINT ["opply-entrypoint"]' in text
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "opply.entrypoints.wsgi:app"]' in text


def test_the_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"

    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_two_app_replicas_behind_a_load_balancer_on_port_8000() -> None:
    services = _compose()["services"]
    app, lb = services["app"], services["lb"]

    assert app["deploy"]["replicas"] == 2
    assert app["build"] == "."
    assert "ports" not in app, "every request comes through the load balancer"
    assert any(port.endswith(":8000") for port in lb["ports"])
    assert "./docker/haproxy.cfg:" in lb["volumes"][0]
    assert lb["depends_on"]["app"]["condition"] == "service_healthy"
    assert app["environment"]["TRUSTED_PROXY_HOPS"] == "1"


def test_compose_app_reaches_postgres_through_pgbouncer_and_counts_limits_in_redis() -> None:
    services = _compose()["services"]
    db, app, pgbouncer = services["db"], services["app"], services["pgbouncer"]

    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in _compose()["volumes"]  # a named volume: data survives `make down`
    assert "@pgbouncer:6432/" in app["environment"]["DATABASE_URL"]
    assert pgbouncer["build"] == "docker/pgbouncer"
    assert pgbouncer["environment"]["POOL_MODE"] == "transaction"
    assert pgbouncer["environment"]["DB_HOST"] == "db"
    assert app["environment"]["RATELIMIT_STORAGE_URI"].startswith("redis://redis:6379/")
    for service in ("pgbouncer", "redis"):
        assert app["depends_on"][service]["condition"] == "service_healthy"


def test_compose_migrates_once_straight_to_postgres_before_any_replica_starts() -> None:
    services = _compose()["services"]
    migrate, app = services["migrate"], services["app"]

    assert migrate["command"] == ["opply", "db", "upgrade"]
    assert "@db:5432/" in migrate["environment"]["DATABASE_URL"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["environment"]["OPPLY_MIGRATE_ON_START"] == "0"


def test_the_compose_app_gets_only_the_variables_it_lists() -> None:
    app = _compose()["services"]["app"]

    assert "env_file" not in app, "an env_file hands the app every variable of .env"
    assert not [name for name in app["environment"] if name.startswith("POSTGRES_")]
    known = {f.name.upper() for f in fields(Settings)} | APP_PROCESS_VARIABLES
    assert set(app["environment"]) <= known, set(app["environment"]) - known


def test_the_compose_load_balancer_applies_the_local_stacks_rules() -> None:
    rule_keywords = {"balance", "default-server", "http-check", "http-request", "http-response"}
    rule_keywords |= {"option", "retries", "retry-on", "timeout"}

    def rules(path: Path) -> list[str]:
        lines = [line.split() for line in path.read_text().splitlines()]
        return [" ".join(words) for words in lines if words and words[0] in rule_keywords]

    compose_rules = rules(REPO_ROOT / "docker" / "haproxy.cfg")
    stack_rules = rules(REPO_ROOT / "stack" / "haproxy.cfg")

    assert "retry-on conn-failure empty-response junk-response" in compose_rules
    # The compose file adds the DNS resolver's timeouts; every other rule is the same.
    assert [r for r in compose_rules if not r.startswith(("timeout resolve", "timeout retry"))] == (
        stack_rules
    )


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


def test_compose_runs_a_webhook_worker_from_the_image_through_pgbouncer() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert worker["image"] == services["app"]["image"]
    assert worker["command"] == ["opply", "worker"]
    assert "@pgbouncer:6432/" in worker["environment"]["DATABASE_URL"]
    assert worker["environment"]["OPPLY_MIGRATE_ON_START"] == "0"
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert worker["healthcheck"] == {"disable": True}  # no HTTP to check
