"""Production settings, the JSON log format and gunicorn's configuration: pure, no server."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import re
import runpy
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from opply.entrypoints.config import (
    EXAMPLE_SELLER,
    ConfigError,
    Settings,
    database_url,
    per_process_limits_problem,
    weak_secret_reason,
)
from opply.entrypoints.jsonlog import JsonFormatter, gunicorn_logconfig, request_id_var

REPO_ROOT = Path(__file__).resolve().parents[2]
STRONG = secrets.token_urlsafe(32)  # 43 characters, made per run
SETTINGS_VARIABLES = (
    "OPPLY_ENV", "SECRET_KEY", "DATABASE_URL", "LOG_LEVEL", "TRUSTED_PROXY_HOPS", "CORS_ORIGINS",
    "CURRENCY", "ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL", "DB_POOL_SIZE", "DB_MAX_OVERFLOW",
)  # fmt: skip


@pytest.fixture(autouse=True)
def metrics_folder_given_back(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR in os.environ itself (it must, before any
    worker imports prometheus_client): after each test the variable is as it was, and a folder
    the config made is removed, so later tests' /metrics are not read from it."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "given-back")  # recorded: restored last
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    yield
    made = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if made.name.startswith("opply-prometheus-"):
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    for name, value in EXAMPLE_SELLER.items():  # production's seller, as an operator sets it
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("INVOICE_FONT", raising=False)
    return monkeypatch


@pytest.mark.parametrize("missing", ["SELLER_NAME", "SELLER_ADDRESS", "SELLER_VAT_ID"])
def test_production_refuses_to_start_without_the_sellers_details(
    env: pytest.MonkeyPatch, missing: str
) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.setenv(missing, "  ")

    with pytest.raises(ConfigError, match=f"{missing} must be set in production"):
        Settings.from_env(load_dotenv_file=False)


def test_the_sellers_details_are_read_and_a_typed_newline_splits_the_address(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.setenv("SELLER_NAME", "Kaffee & Co GmbH")
    env.setenv("SELLER_ADDRESS", r"Bahnhofstraße 2\n80335 München")
    env.setenv("SELLER_VAT_ID", "DE987654321")

    settings = Settings.from_env(load_dotenv_file=False)

    assert (settings.seller_name, settings.seller_address, settings.seller_vat_id) == (
        "Kaffee & Co GmbH",
        "Bahnhofstraße 2\n80335 München",
        "DE987654321",
    )


def test_development_invoices_name_an_example_seller(env: pytest.MonkeyPatch) -> None:
    for name in EXAMPLE_SELLER:
        env.delenv(name)

    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.seller_name == EXAMPLE_SELLER["SELLER_NAME"]
    assert settings.seller_address.splitlines()[-1] == "Germany"


def test_an_invoice_font_that_is_not_a_file_stops_the_start(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("INVOICE_FONT", str(tmp_path / "missing.ttf"))

    with pytest.raises(ConfigError, match="INVOICE_FONT"):
        Settings.from_env(load_dotenv_file=False)


@pytest.mark.parametrize("secret", [None, "", "too-short", "s" * 31], ids=repr)
def test_production_refuses_to_start_without_a_strong_secret_key(
    env: pytest.MonkeyPatch, secret: str | None
) -> None:
    env.setenv("OPPLY_ENV", "production")
    if secret is not None:
        env.setenv("SECRET_KEY", secret)

    with pytest.raises(ConfigError, match=r"SECRET_KEY (is not set|is shorter than 32 bytes)"):
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


def test_webhooks_may_call_only_public_https_addresses_in_production(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    env.setenv("DATABASE_URL", "postgresql://opply@db.internal:5432/opply")

    settings = Settings.from_env(load_dotenv_file=False)

    assert (settings.webhook_allow_http, settings.webhook_allow_private) == (False, False)
    assert settings.webhook_timeout == 15.0
    assert settings.webhook_retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_webhooks_may_call_a_local_http_receiver_in_development(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(load_dotenv_file=False)

    assert (settings.webhook_allow_http, settings.webhook_allow_private) == (True, True)


def test_webhook_settings_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBHOOK_TIMEOUT", "2.5")
    env.setenv("WEBHOOK_RETRY_SCHEDULE", "0, 1,2")
    env.setenv("WEBHOOK_ALLOW_HTTP", "false")
    env.setenv("WEBHOOK_ALLOW_PRIVATE", "false")
    env.setenv("WEBHOOK_CONCURRENCY", "3")

    settings = Settings.from_env(load_dotenv_file=False)

    assert settings.webhook_timeout == 2.5
    assert settings.webhook_retry_schedule == (0, 1, 2)
    assert (settings.webhook_allow_http, settings.webhook_allow_private) == (False, False)
    assert settings.webhook_concurrency == 3


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEBHOOK_TIMEOUT", "0", "WEBHOOK_TIMEOUT must be a positive number"),
        ("WEBHOOK_RETRY_SCHEDULE", "5,soon", "WEBHOOK_RETRY_SCHEDULE must be whole seconds"),
        ("WEBHOOK_RETRY_SCHEDULE", "5,-1", "WEBHOOK_RETRY_SCHEDULE must not have a negative"),
        ("WEBHOOK_ALLOW_HTTP", "maybe", "WEBHOOK_ALLOW_HTTP must be true or false"),
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


def fake_server(workers: int) -> Any:
    """What gunicorn's hooks use of its arbiter: the settings and the error log."""
    return SimpleNamespace(cfg=SimpleNamespace(workers=workers), log=logging.getLogger("gunicorn"))


def test_gunicorn_refuses_per_process_limits_with_several_workers_in_production(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.delenv("RATELIMIT_STORAGE_URI", raising=False)
    conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    with pytest.raises(SystemExit):
        conf["on_starting"](fake_server(workers=4))
    assert "RATELIMIT_STORAGE_URI=redis://" in caplog.text
    env.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    conf["on_starting"](fake_server(workers=4))  # shared counts: starts


def test_gunicorn_warns_about_per_process_limits_outside_production(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("OPPLY_ENV", "development")
    env.delenv("RATELIMIT_STORAGE_URI", raising=False)
    conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    with caplog.at_level(logging.WARNING, logger="gunicorn"):
        conf["on_starting"](fake_server(workers=5))
    assert "rate limits are per worker" in caplog.text


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
        conf["on_starting"](fake_server(workers=1))
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


# --- no known or weak key in production ------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("change-me-to-a-long-random-string-of-at-least-32-bytes", "placeholder from example.env"),
        ("my-production-secret-key-for-the-opply-shop-2026", "contains 'secret'"),
        ("a" * 64, "too predictable"),
        ("abcd" * 16, "too predictable"),
        ("0123456789" * 4, "too predictable"),
    ],
    ids=["example.env", "a-phrase", "one-letter", "repeated-word", "digits"],
)
def test_production_refuses_known_and_weak_keys_and_says_how_to_make_one(
    env: pytest.MonkeyPatch, key: str, reason: str
) -> None:
    env.setenv("OPPLY_ENV", "production")
    env.setenv("SECRET_KEY", key)

    with pytest.raises(ConfigError, match=reason) as refused:
        Settings.from_env(load_dotenv_file=False)
    assert "secrets.token_urlsafe(48)" in str(refused.value)


@pytest.mark.parametrize("make", [secrets.token_urlsafe, secrets.token_hex], ids=["urlsafe", "hex"])
def test_random_keys_pass(make: Any) -> None:
    for _ in range(200):
        assert weak_secret_reason(make(32)) is None


def _keys_in_the_repository() -> list[str]:
    """Every literal a tracked file assigns to a SECRET_KEY-like name."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assignment = re.compile(
        r"""(?:SECRET(?:_KEY)?|secret_key)["']?\s*[:=]\s*["']?([A-Za-z0-9_\-+/=.]{8,})""", re.I
    )
    keys = set()
    for name in tracked:
        path = REPO_ROOT / name
        if path.suffix in (".png", ".lock") or not path.is_file():
            continue
        for match in assignment.finditer(path.read_text(errors="replace")):
            value = match.group(1)
            if not value.startswith(("secrets.", "settings.", "os.", "TEST_", "STRONG")):
                keys.add(value)
    return sorted(keys)


def test_no_key_written_in_the_repository_can_sign_production_tokens() -> None:
    keys = _keys_in_the_repository()
    assert "change-me-to-a-long-random-string-of-at-least-32-bytes" in keys  # the scan works
    assert {key: weak_secret_reason(key) for key in keys if weak_secret_reason(key) is None} == {}


# --- DATABASE_URL spellings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://opply:pw@db.example:5432/opply",
        "postgres://opply:pw@db.example:5432/opply",
        "postgresql+psycopg2://opply:pw@db.example:5432/opply",
        "POSTGRES://opply:pw@db.example:5432/opply",
    ],
)
def test_every_usual_postgresql_spelling_runs_on_psycopg2(given: str) -> None:
    assert database_url(given) == "postgresql+psycopg2://opply:pw@db.example:5432/opply"


@pytest.mark.parametrize(
    "given",
    ["postgresql+psycopg://u@h/d", "mysql://u@h/d", "redis://h:6379/0", "just-a-hostname"],
)
def test_another_driver_or_scheme_is_a_start_up_error_naming_the_forms(given: str) -> None:
    with pytest.raises(ConfigError, match="TEST_DATABASE_URL") as refused:
        database_url(given, "TEST_DATABASE_URL")
    assert "postgres://" in str(refused.value)
    assert "sqlite:///" in str(refused.value)


def test_settings_read_a_postgres_url_as_psycopg2(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "postgres://opply@db.example/opply")
    assert Settings.from_env(load_dotenv_file=False).database_url.startswith(
        "postgresql+psycopg2://"
    )


def test_a_psycopg2_url_really_connects(env: pytest.MonkeyPatch) -> None:
    """The normalised URL loads the dialect we ship (no "No module named 'psycopg'")."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url("postgres://u@127.0.0.1:9/d"))
    assert engine.dialect.driver == "psycopg2"


# --- limits shared across workers -------------------------------------------------------------


def test_per_process_limits_with_several_workers_are_named_a_problem(
    env: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env(load_dotenv_file=False)
    assert settings.ratelimit_storage_uri == "memory://"
    problem = per_process_limits_problem(settings, 4)
    assert problem is not None
    assert "RATELIMIT_STORAGE_URI=redis://" in problem
    assert per_process_limits_problem(settings, 1) is None
    env.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    assert per_process_limits_problem(Settings.from_env(load_dotenv_file=False), 4) is None


def test_gunicorn_builds_no_access_line_while_the_access_log_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    built: list[object] = []
    logger_class = conf["logger_class"]
    monkeypatch.setattr(logger_class, "atoms", lambda *args: built.append(args) or {"h": "-"})
    logger = logger_class.__new__(logger_class)
    logger.cfg = SimpleNamespace(accesslog=None)
    logger.access(None, None, {}, None)
    assert built == []
    logger.cfg = SimpleNamespace(accesslog="-")
    logger.access_log = logging.getLogger("test.gunicorn.access")
    logger.atoms_wrapper_class = dict
    logger.cfg.access_log_format = "%(h)s"
    logger.access(None, None, {}, None)
    assert len(built) == 1
