"""Settings from the environment (and a ``.env`` file if present)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from opply.application import webhooks

log = logging.getLogger("opply.config")

MIN_SECRET_KEY_BYTES = 32
ENVIRONMENTS = ("development", "test", "production")
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class ConfigError(RuntimeError):
    """The service cannot start with this configuration."""


# --- DATABASE_URL -----------------------------------------------------------------------------

# Every spelling of a PostgreSQL URL that hosts hand out, all on the driver we ship (psycopg2):
# SQLAlchemy itself maps "postgresql://" to psycopg 3 and does not know "postgres://".
POSTGRES_SCHEMES = ("postgresql+psycopg2", "postgresql", "postgres")
ACCEPTED_URLS = (
    "postgresql://, postgres:// or postgresql+psycopg2:// (user:password@host:port/database), "
    "or sqlite:///path/to/file.sqlite3"
)


def database_url(raw: str, variable: str = "DATABASE_URL") -> str:
    """``raw`` as SQLAlchemy must read it here, or a ``ConfigError`` naming ``variable`` and
    the accepted forms."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme, separator, rest = raw.strip().partition("://")
    if not separator:
        raise ConfigError(f"{variable} is not a database URL; use {ACCEPTED_URLS}")
    if scheme.lower() in POSTGRES_SCHEMES:
        url = f"postgresql+psycopg2://{rest}"
    elif scheme.lower() == "sqlite":
        url = raw.strip()
    else:
        raise ConfigError(
            f"{variable} uses {scheme}://, which this service cannot use; use {ACCEPTED_URLS}"
        )
    try:
        make_url(url)
    except ArgumentError as error:
        raise ConfigError(f"{variable} is not a valid database URL ({error})") from error
    return url


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in it, whatever characters it holds. DATABASE_PASSWORD comes
    apart from DATABASE_URL where a secret store hands the password over on its own (ECS
    reads it from the database's Secrets Manager secret into the task, deploy/aws/)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


# --- SECRET_KEY -------------------------------------------------------------------------------

# Keys published with the project (example.env): known to everybody, so never a production key.
PUBLISHED_KEYS = frozenset({"change-me-to-a-long-random-string-of-at-least-32-bytes"})
PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "password", "replace")
MIN_SECRET_KEY_BITS = 128


def estimated_bits(key: str) -> float:
    """A cautious guess at the key's randomness: the lower of its length times the Shannon
    entropy of its characters (about 6 bits a character for ``token_urlsafe``, 4 for hex) and
    the size it compresses to (a repeated word or a run of digits compresses to almost
    nothing)."""
    counts = [key.count(c) for c in set(key)]
    shannon = -sum(n / len(key) * math.log2(n / len(key)) for n in counts) * len(key)
    compressed = len(zlib.compress(key.encode(), 9)) - len(zlib.compress(b"", 9))
    return min(shannon, 8.0 * compressed)


def weak_secret_reason(key: str) -> str | None:
    """Why ``key`` must not sign production tokens, or None if it may."""
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        return f"is shorter than {MIN_SECRET_KEY_BYTES} bytes"
    if key in PUBLISHED_KEYS:
        return "is the placeholder from example.env, which everybody can read"
    lowered = key.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"contains {word!r}: it looks like a placeholder, not a random key"
    if estimated_bits(key) < MIN_SECRET_KEY_BITS:
        return f"is too predictable (under {MIN_SECRET_KEY_BITS} bits of randomness)"
    return None


# --- rate limits across processes ---------------------------------------------------------------


def per_process_limits_problem(settings: Settings, workers: int) -> str | None:
    """What is wrong with counting limits in each process's memory for ``workers`` processes
    (each would let the whole limit through), or None if nothing is."""
    if not settings.ratelimit_enabled or workers <= 1:
        return None
    if not settings.ratelimit_storage_uri.startswith("memory://"):
        return None
    return (
        f"RATELIMIT_STORAGE_URI is memory://, so each of the {workers} workers counts on its "
        f"own: the login limit ({settings.login_rate_limit} per username) lets up to {workers} "
        "times that through. Set RATELIMIT_STORAGE_URI=redis://HOST:6379/0 (shared by every "
        "worker and instance), or WEB_CONCURRENCY=1, or RATELIMIT_ENABLED=false if a proxy in "
        "front enforces the limits"
    )


def _instance_dir() -> Path:
    instance = Path(os.environ.get("OPPLY_INSTANCE_DIR", Path.cwd() / "instance"))
    instance.mkdir(parents=True, exist_ok=True)
    return instance


def _default_database_url() -> str:
    return f"sqlite:///{_instance_dir() / 'opply.sqlite3'}"


def _development_secret() -> str:
    """One random key per instance folder, shared by every worker process and kept across
    restarts (a key per process would make a token from one worker invalid on the next)."""
    path = _instance_dir() / "dev-secret-key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dev-secret-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            os.chmod(tmp, 0o600)
            # link() creates the name only if nobody else did: the first process wins.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
                log.warning(
                    "SECRET_KEY is not set: generated a development key in %s "
                    "(set SECRET_KEY in production)",
                    path,
                )
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def _seconds(name: str, default: int) -> timedelta:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return timedelta(seconds=default)
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return timedelta(seconds=value)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _non_negative(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 0:
        raise ConfigError(f"{name} must be zero or more, got {value}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _shop_timezone() -> str:
    """SHOP_TIMEZONE as an IANA name the zone database knows (the dashboard's days)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("SHOP_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"SHOP_TIMEZONE must be an IANA time zone such as Europe/Berlin or UTC, got {name!r}"
        ) from exc
    return name


def _positive_int(name: str, default: int) -> int:
    value = _int(name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _positive_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


DEFAULT_RETRY_SCHEDULE = ",".join(str(wait) for wait in webhooks.DEFAULT_RETRY_SCHEDULE)


def _schedule(name: str) -> tuple[int, ...]:
    """Seconds to wait after each failed attempt, separated by commas (0 is allowed)."""
    raw = os.environ.get(name, "").strip() or DEFAULT_RETRY_SCHEDULE
    try:
        waits = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"{name} must be whole seconds separated by commas, got {raw!r}") from exc
    if any(wait < 0 for wait in waits):
        raise ConfigError(f"{name} must not have a negative wait, got {raw!r}")
    return waits


def _text(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


# The seller every invoice names. Production must say who it is; elsewhere these stand in.
SELLER_VARIABLES = ("SELLER_NAME", "SELLER_ADDRESS", "SELLER_VAT_ID")
EXAMPLE_SELLER = {
    "SELLER_NAME": "Opply Demo GmbH",
    "SELLER_ADDRESS": "Musterstraße 1\n10115 Berlin\nGermany",
    "SELLER_VAT_ID": "DE000000000",
}


def _seller(env: str) -> dict[str, str]:
    """SELLER_NAME, SELLER_ADDRESS (lines separated by newlines, or by ``\\n``) and
    SELLER_VAT_ID; production refuses to start without any of them."""
    given = {name: os.environ.get(name, "").strip() for name in SELLER_VARIABLES}
    missing = [name for name, value in given.items() if not value]
    if missing and env == "production":
        raise ConfigError(
            f"{', '.join(missing)} must be set in production: every invoice names the seller "
            "(SELLER_NAME, SELLER_ADDRESS with its lines separated by \\n, SELLER_VAT_ID)"
        )
    found = {name: value or EXAMPLE_SELLER[name] for name, value in given.items()}
    found["SELLER_ADDRESS"] = found["SELLER_ADDRESS"].replace("\\n", "\n")
    return found


def _invoice_font() -> str | None:
    raw = os.environ.get("INVOICE_FONT", "").strip()
    if raw and not Path(raw).is_file():
        raise ConfigError(f"INVOICE_FONT names {raw!r}, which is not a file")
    return raw or None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level() -> str:
    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    env: str = "development"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=7)
    currency: str = "EUR"
    token_issuer: str = "opply"  # noqa: S105 - the JWT "iss" claim, not a secret
    db_pool_size: int = 5
    db_max_overflow: int = 5
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    # How many proxies (load balancers) in front of us append X-Forwarded-* headers; 0 trusts none.
    trusted_proxy_hops: int = 0
    # Abuse limits (entrypoints/limits.py). Storage "memory://" is per process; point
    # RATELIMIT_STORAGE_URI at Redis so every worker and instance shares the counts.
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str = "memory://"
    login_rate_limit: str = "10/minute"  # POST /api/token/ per username
    login_address_rate_limit: str = "30/minute"  # POST /api/token/ per client address
    refresh_rate_limit: str = "30/minute"  # POST /api/token/refresh/ per client address
    # The admin's dashboard: products at or below this stock are "running low"; its days of
    # sales are days in this IANA time zone.
    low_stock_threshold: int = 10
    shop_timezone: str = "UTC"
    # The seller on every invoice (production sets them; elsewhere the examples stand in).
    seller_name: str = EXAMPLE_SELLER["SELLER_NAME"]
    seller_address: str = EXAMPLE_SELLER["SELLER_ADDRESS"].replace("\\n", "\n")
    seller_vat_id: str = EXAMPLE_SELLER["SELLER_VAT_ID"]
    # A TrueType font for invoices; None: the one the package ships (DejaVu Sans).
    invoice_font: str | None = None
    # Webhooks (application/webhooks.py, adapters/webhook_http.py). Outside production a
    # newcomer's receiver on http://127.0.0.1 works; production needs them set to allow it.
    webhook_timeout: float = 15.0
    webhook_retry_schedule: tuple[int, ...] = webhooks.DEFAULT_RETRY_SCHEDULE
    webhook_allow_http: bool = True
    webhook_allow_private: bool = True
    webhook_concurrency: int = 8  # deliveries in flight per `opply worker`
    webhook_poll_interval: float = 0.5  # seconds between polls of an idle worker

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, *, load_dotenv_file: bool = True) -> Settings:
        if load_dotenv_file:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        env = os.environ.get("OPPLY_ENV", "development").strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigError(f"OPPLY_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
        secret = os.environ.get("SECRET_KEY", "")
        if env == "production":
            weak = weak_secret_reason(secret) if secret else "is not set"
            if weak:
                raise ConfigError(
                    f"SECRET_KEY {weak}. Production needs a random key of at least "
                    f"{MIN_SECRET_KEY_BYTES} bytes; make one with {MAKE_A_KEY}"
                )
        elif len(secret.encode()) < MIN_SECRET_KEY_BYTES:
            if secret:
                warnings.warn(
                    "SECRET_KEY is shorter than 32 bytes; the development key in the "
                    "instance folder is used instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
            secret = _development_secret()
        if env == "production" and not os.environ.get("DATABASE_URL"):
            raise ConfigError(
                "DATABASE_URL must be set in production "
                "(e.g. postgresql://user:password@host:5432/opply)"
            )
        currency = os.environ.get("CURRENCY", "EUR").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"CURRENCY must be a three-letter ISO 4217 code, got {currency!r}")
        seller = _seller(env)
        origins = tuple(
            o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()
        )
        url = (
            database_url(os.environ["DATABASE_URL"])
            if os.environ.get("DATABASE_URL")
            else _default_database_url()
        )
        if os.environ.get("DATABASE_PASSWORD"):
            url = with_password(url, os.environ["DATABASE_PASSWORD"])
        return cls(
            database_url=url,
            secret_key=secret,
            env=env,
            access_token_ttl=_seconds("ACCESS_TOKEN_TTL", 15 * 60),
            refresh_token_ttl=_seconds("REFRESH_TOKEN_TTL", 7 * 24 * 3600),
            currency=currency,
            db_pool_size=_int("DB_POOL_SIZE", 5),
            db_max_overflow=_int("DB_MAX_OVERFLOW", 5),
            cors_origins=origins,
            log_level=_log_level(),
            trusted_proxy_hops=_non_negative("TRUSTED_PROXY_HOPS", 0),
            ratelimit_enabled=_flag("RATELIMIT_ENABLED", True),
            ratelimit_storage_uri=os.environ.get("RATELIMIT_STORAGE_URI", "").strip()
            or "memory://",
            login_rate_limit=_text("LOGIN_RATE_LIMIT", "10/minute"),
            login_address_rate_limit=_text("LOGIN_ADDRESS_RATE_LIMIT", "30/minute"),
            refresh_rate_limit=_text("REFRESH_RATE_LIMIT", "30/minute"),
            low_stock_threshold=_non_negative("LOW_STOCK_THRESHOLD", 10),
            shop_timezone=_shop_timezone(),
            seller_name=seller["SELLER_NAME"],
            seller_address=seller["SELLER_ADDRESS"],
            seller_vat_id=seller["SELLER_VAT_ID"],
            invoice_font=_invoice_font(),
            webhook_timeout=_positive_number("WEBHOOK_TIMEOUT", 15.0),
            webhook_retry_schedule=_schedule("WEBHOOK_RETRY_SCHEDULE"),
            webhook_allow_http=_flag("WEBHOOK_ALLOW_HTTP", env != "production"),
            webhook_allow_private=_flag("WEBHOOK_ALLOW_PRIVATE", env != "production"),
            webhook_concurrency=_positive_int("WEBHOOK_CONCURRENCY", 8),
            webhook_poll_interval=_positive_number("WEBHOOK_POLL_INTERVAL", 0.5),
        )
