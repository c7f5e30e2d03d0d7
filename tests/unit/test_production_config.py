"""Production settings, the JSON log format and gunicorn's configuration: pure, no server."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import runpy
from pathlib import Path
from typing import Any

import pytest

from opply.entrypoints.config import ConfigError, Settings
from opply.entrypoints.jsonlog import JsonFormatter, gunicorn_logconfig, request_id_var

REPO_ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 32
SETTINGS_VARIABLES = (
    "OPPLY_ENV", "SECRET_KEY", "DATABASE_URL", "LOG_LEVEL", "TRUSTED_PROXY_HOPS", "CORS_ORIGINS",
    "CURRENCY", "ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL", "DB_POOL_SIZE", "DB_MAX_OVERFLOW",
)  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    return monkeypatch


@pytest.mark.parametrize("secret", [None, "", "too-short", "s" * 31], ids=repr)
def test_production_refuses_to_start_without_a_strong_secret_key(
    env: pytest.MonkeyPatch, secret: str | None
) -> None:
    env.setenv("OPPLY_ENV", "production")
    if secret is not None:
        env.setenv("SECRET_KEY", secret)

    with pytest.raises(ConfigError, match="SECRET_KEY must be set to at least 32 bytes"):
        Settings.from_env(load_dotenv_file=False)


def test_production_starts_with_a_32_byte_secret_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)

    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.is_production
    assert settings.secret_key == STRONG


def test_operations_settings_default_to_closed_and_direct(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.cors_origins == ()
    assert settings.trusted_proxy_hops == 0
    assert settings.log_level == "INFO"


def test_operations_settings_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    env.setenv("TRUSTED_PROXY_HOPS", "1")
    env.setenv("LOG_LEVEL", "warning")

    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxy_hops == 1
    assert settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOG_LEVEL", "chatty", "LOG_LEVEL must be one of"),
        ("TRUSTED_PROXY_HOPS", "-1", "TRUSTED_PROXY_HOPS must be zero or more"),
        ("TRUSTED_PROXY_HOPS", "one", "TRUSTED_PROXY_HOPS must be a whole number"),
    ],
)
def test_a_wrong_operations_setting_stops_the_start_with_its_name(
    env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    env.setenv(name, value)

    with pytest.raises(ConfigError, match=message):
        Settings.from_env(load_dotenv_file=False)


# --- JSON log lines -----------------------------------------------------------------------------


def _log_through_formatter(**extra: Any) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("opply.test.jsonlog")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("stock low for %s", "oat flour", extra=extra)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert line.count("\n") == 1
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_a_log_line_is_one_json_object_with_level_logger_and_message() -> None:
    line = _log_through_formatter()

    assert line["level"] == "WARNING"
    assert line["logger"] == "opply.test.jsonlog"
    assert line["message"] == "stock low for oat flour"
    assert line["ts"].endswith("+00:00")
    assert "request_id" not in line


def test_a_log_line_written_while_serving_a_request_names_its_request_id() -> None:
    token = request_id_var.set("req-77")
    try:
        line = _log_through_formatter(route="/api/v1/orders/", status=201)
    finally:
        request_id_var.reset(token)

    assert line["request_id"] == "req-77"
    assert line["route"] == "/api/v1/orders/"
    assert line["status"] == 201


def test_an_exception_is_logged_inside_the_same_json_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("opply.test.jsonlog.exc")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_gunicorn_access_lines_are_dropped_unless_asked_for() -> None:
    quiet = gunicorn_logconfig("INFO")["loggers"]["gunicorn.access"]
    loud = gunicorn_logconfig("INFO", access_log=True)["loggers"]["gunicorn.access"]

    assert quiet["propagate"] is False
    assert quiet["level"] == "CRITICAL"
    assert loud["propagate"] is True


# --- gunicorn.conf.py ---------------------------------------------------------------------------


def _gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **values: str) -> dict[str, Any]:
    for name in ("WEB_CONCURRENCY", "GUNICORN_ACCESSLOG", "PROMETHEUS_MULTIPROC_DIR", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    conf["on_exit"](None)  # removes the metrics folder it made, if it made one
    return conf


def test_gunicorn_runs_web_concurrency_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _gunicorn_conf(monkeypatch, WEB_CONCURRENCY="2", PORT="9000")

    assert conf["workers"] == 2
    assert conf["bind"] == "0.0.0.0:9000"


def test_gunicorn_defaults_to_two_workers_per_core_plus_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = _gunicorn_conf(monkeypatch)

    assert conf["workers"] == multiprocessing.cpu_count() * 2 + 1
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["accesslog"] is None
    assert conf["timeout"] > 0
    assert 0 < conf["graceful_timeout"] < 30  # below compose's stop_grace_period


def test_gunicorn_makes_a_metrics_folder_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    try:
        assert folder.is_dir()
        (folder / "counter_123.db").write_bytes(b"stale")
        conf["on_starting"](None)
        assert list(folder.iterdir()) == []
    finally:
        conf["on_exit"](None)
    assert not folder.exists()


def test_gunicorn_keeps_a_metrics_folder_given_by_the_operator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _gunicorn_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))

    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert tmp_path.is_dir()
