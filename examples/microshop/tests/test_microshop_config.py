"""Settings parsing and the pure helpers: bad input gets a message naming the variable and the expectation."""

from __future__ import annotations

import pytest
from microshop.config import DEFAULT_PORTS, ConfigError, load_settings, redact_url
from microshop.db import parse_database_url, translate


def test_defaults_give_each_service_its_port_and_a_local_sqlite_file() -> None:
    for service, port in DEFAULT_PORTS.items():
        s = load_settings(service, {})
        assert s.port == port
        assert s.host == "127.0.0.1"
        assert s.version == "dev"
        assert s.database_url == f"sqlite:///microshop-{service}.db"
        assert not s.redis_url and not s.amqp_url


def test_environment_overrides_are_applied() -> None:
    s = load_settings(
        "order",
        {
            "PORT": "9100",
            "HOST": "0.0.0.0",
            "SERVICE_VERSION": "abc123",
            "DATA_DIR": "/srv/data",
            "USER_URL": "http://users:8001/",
            "LOG_LEVEL": "DEBUG",
        },
    )
    assert (s.port, s.host, s.version, s.log_level) == (9100, "0.0.0.0", "abc123", "debug")
    assert s.database_url == "sqlite:////srv/data/microshop-order.db"
    assert s.user_url == "http://users:8001"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "eighty"}, "PORT must be an integer between 1 and 65535, got 'eighty'"),
        ({"PORT": "70000"}, "PORT must be an integer between 1 and 65535, got 70000"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of debug, info, warning, error, critical, got 'loud'"),
        (
            {"DATABASE_URL": "mysql://x/y"},
            "DATABASE_URL must start with sqlite:// or postgresql:// or postgres://",
        ),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"CACHE_TTL_SECONDS": "-1"}, "CACHE_TTL_SECONDS must be a number between 0.0 and 86400.0, got -1.0"),
    ],
)
def test_bad_values_are_rejected_with_a_message_naming_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings("product", env)
    assert expected in str(err.value)


def test_unknown_service_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown service 'cart'"):
        load_settings("cart", {})


def test_passwords_never_appear_in_errors_or_redacted_urls() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/shop") == "postgresql://app:***@db:5432/shop"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ConfigError) as err:
        load_settings("user", {"DATABASE_URL": "mysql://root:s3cret@db/shop"})
    assert "s3cret" not in str(err.value)
    assert "***" in str(err.value)


def test_payment_key_is_kept_out_of_the_settings_repr() -> None:
    s = load_settings("payment", {"PAYMENT_API_KEY": "sk_live_abc"})
    assert s.payment_api_key == "sk_live_abc"
    assert "sk_live_abc" not in repr(s)


def test_database_urls_parse_to_dialect_and_location() -> None:
    assert parse_database_url("sqlite:///rel/x.db").location == "rel/x.db"
    assert parse_database_url("sqlite:////abs/x.db").location == "/abs/x.db"
    pg = parse_database_url("postgres://u:pw@h/db")
    assert (pg.dialect, pg.location) == ("postgresql", "postgresql://u:pw@h/db")
    assert "pw" not in pg.display
    with pytest.raises(ConfigError, match="sqlite:///<path>"):
        parse_database_url("sqlite://")


def test_portable_sql_is_translated_per_dialect() -> None:
    sql = "CREATE TABLE t (id {id}, v TEXT); SELECT * FROM t WHERE v = ?"
    assert translate(sql, "sqlite") == (
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT); SELECT * FROM t WHERE v = ?"
    )
    assert (
        translate(sql, "postgresql")
        == "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, v TEXT); SELECT * FROM t WHERE v = %s"
    )
