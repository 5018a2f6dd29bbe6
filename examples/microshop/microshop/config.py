"""Settings read from the environment.

Every microshop service is configured the twelve-factor way: the platform that runs it (Juanie's local engine
or Kubernetes) passes plain environment variables. Parsing is a pure function of a mapping so that tests can
build settings without touching ``os.environ``, and so that a bad value is reported as one clear line at
startup instead of a traceback halfway through a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS: dict[str, int] = {"user": 8001, "product": 8002, "order": 8003, "payment": 8004}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names the variable and what was expected."""


@dataclass(frozen=True)
class Settings:
    """Everything a service needs to know about its surroundings, already validated."""

    service: str
    host: str = "127.0.0.1"
    port: int = 8000
    version: str = "dev"
    log_level: str = "info"
    database_url: str = ""
    redis_url: str = ""
    redis_prefix: str = "microshop:"
    amqp_url: str = ""
    amqp_exchange: str = "microshop"
    cache_ttl_seconds: float = 30.0
    user_url: str = "http://127.0.0.1:8001"
    product_url: str = "http://127.0.0.1:8002"
    payment_url: str = "http://127.0.0.1:8004"
    http_timeout_seconds: float = 5.0
    payment_api_key: str = field(default="", repr=False)
    shutdown_grace_seconds: float = 10.0

    @property
    def sqlite_default_path(self) -> str:
        """Where the service keeps its SQLite file when ``DATABASE_URL`` is unset."""
        return f"microshop-{self.service}.db"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer between {low} and {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be an integer between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between {low} and {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a number between {low} and {high}, got {value}")
    return value


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        expected = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{name} must start with {expected}, got {redact_url(raw)!r}")
    return raw.rstrip("/") if scheme.startswith("http") else raw


def load_settings(service: str, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings of ``service`` from ``env`` (default ``os.environ``); ConfigError if bad."""
    if service not in DEFAULT_PORTS:
        raise ConfigError(f"unknown service {service!r}; expected one of {', '.join(DEFAULT_PORTS)}")
    env = os.environ if env is None else env
    log_level = env.get("LOG_LEVEL", "info").strip().lower() or "info"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    database_url = _url(env, "DATABASE_URL", "", ("sqlite", "postgresql", "postgres"))
    if not database_url:
        data_dir = env.get("DATA_DIR", "").strip()
        path = Path(data_dir) / f"microshop-{service}.db" if data_dir else Path(f"microshop-{service}.db")
        database_url = f"sqlite:///{path}"
    return Settings(
        service=service,
        host=env.get("HOST", "").strip() or "127.0.0.1",
        port=_int(env, "PORT", DEFAULT_PORTS[service], 1, 65535),
        version=env.get("SERVICE_VERSION", "").strip() or "dev",
        log_level=log_level,
        database_url=database_url,
        redis_url=_url(env, "REDIS_URL", "", ("redis", "rediss", "unix")),
        redis_prefix=env.get("REDIS_PREFIX", "microshop:"),
        amqp_url=_url(env, "AMQP_URL", "", ("amqp", "amqps")),
        amqp_exchange=env.get("AMQP_EXCHANGE", "").strip() or "microshop",
        cache_ttl_seconds=_float(env, "CACHE_TTL_SECONDS", 30.0, 0.0, 86400.0),
        user_url=_url(env, "USER_URL", "http://127.0.0.1:8001", ("http", "https")),
        product_url=_url(env, "PRODUCT_URL", "http://127.0.0.1:8002", ("http", "https")),
        payment_url=_url(env, "PAYMENT_URL", "http://127.0.0.1:8004", ("http", "https")),
        http_timeout_seconds=_float(env, "HTTP_TIMEOUT_SECONDS", 5.0, 0.1, 300.0),
        payment_api_key=env.get("PAYMENT_API_KEY", ""),
        shutdown_grace_seconds=_float(env, "SHUTDOWN_GRACE_SECONDS", 10.0, 0.0, 300.0),
    )


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` so it can be logged or shown in an error."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
