"""Settings from the environment and keyword arguments; URL forms; masking."""

from __future__ import annotations

import pytest

import storelayer
from storelayer import ConfigurationError, Settings, mask_url
from storelayer.plugins import get_plugin_manager


def test_default_is_the_sqlite_file() -> None:
    settings = Settings.from_env(environ={})
    assert settings.url.render_as_string() == "sqlite:///./storelayer.db"


def test_environment_is_read() -> None:
    env = {
        "DATABASE_URL": "postgresql://app:pw@db:5432/app",
        "DATABASE_REPLICA_URLS": "postgresql://app:pw@r1/app, postgresql://app:pw@r2/app",
        "STORELAYER_BACKEND": "postgresql",
        "STORELAYER_POOL_SIZE": "20",
        "STORELAYER_MAX_OVERFLOW": "5",
        "STORELAYER_POOL_TIMEOUT": "2.5",
        "STORELAYER_POOL_RECYCLE": "600",
        "STORELAYER_MAX_REPLICA_LAG": "1.5",
        "STORELAYER_ECHO": "yes",
    }
    s = Settings.from_env(environ=env)
    assert s.url.host == "db"
    assert [u.host for u in s.replica_urls] == ["r1", "r2"]
    assert (s.backend, s.pool_size, s.max_overflow, s.pool_timeout, s.pool_recycle) == (
        "postgresql",
        20,
        5,
        2.5,
        600,
    )
    assert s.max_replica_lag == 1.5
    assert s.echo is True
    assert s.pool_overrides() == {
        "pool_size": 20,
        "max_overflow": 5,
        "pool_timeout": 2.5,
        "pool_recycle": 600,
    }


def test_keyword_arguments_override_the_environment() -> None:
    env = {"DATABASE_URL": "sqlite:///env.db", "STORELAYER_POOL_SIZE": "20"}
    s = Settings.from_env("sqlite:///kw.db", environ=env, pool_size=3, replicas=["sqlite:///r.db"])
    assert s.url.database == "kw.db"
    assert s.pool_size == 3
    assert [u.database for u in s.replica_urls] == ["r.db"]


@pytest.mark.parametrize(
    ("pasted", "driver"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg2"),
        ("postgresql://u:p@h/db", "postgresql+psycopg2"),
        ("mysql://u:p@h/db", "mysql+pymysql"),
        ("mariadb://u:p@h/db", "mysql+pymysql"),
        ("sqlite:///relative.db", "sqlite+pysqlite"),
        ("sqlite:////abs/path.db", "sqlite+pysqlite"),
        ("sqlite://", "sqlite+pysqlite"),
    ],
)
def test_pasted_url_forms_map_to_a_driver(pasted: str, driver: str) -> None:
    backend = get_plugin_manager().resolve(pasted.partition(":")[0])
    url = backend.normalize_url(Settings.from_env(pasted, environ={}).url)
    assert url.drivername == driver


def test_sqlite_path_forms_are_kept() -> None:
    assert Settings.from_env("sqlite:///relative.db", environ={}).url.database == "relative.db"
    assert Settings.from_env("sqlite:////abs.db", environ={}).url.database == "/abs.db"
    assert Settings.from_env("sqlite://", environ={}).url.database is None


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"STORELAYER_POOL_SIZE": "many"},
            "STORELAYER_POOL_SIZE must be a whole number, got 'many'",
        ),
        ({"STORELAYER_POOL_TIMEOUT": "soon"}, "STORELAYER_POOL_TIMEOUT must be a number"),
        ({"STORELAYER_POOL_SIZE": "0"}, "pool_size (STORELAYER_POOL_SIZE) must be >= 1"),
        ({"STORELAYER_ECHO": "maybe"}, "STORELAYER_ECHO must be one of"),
        ({"DATABASE_URL": "not a url at all"}, "DATABASE_URL is not a database URL"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(environ=env)
    assert fragment in str(info.value)


def test_unknown_keyword_lists_valid_ones() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown connect\\(\\) argument.*pool_sise.*pool_size"
    ):
        Settings.from_env("sqlite://", environ={}, pool_sise=3)


def test_malformed_url_error_hides_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env("postgresql://user:hunter2@host:notaport/db", environ={})
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_password_is_masked_everywhere(tmp_path: object) -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/app"
    assert "hunter2" not in mask_url(url)
    assert "hunter2" not in repr(Settings.from_env(url, environ={}, replicas=[url]))
    db = storelayer.connect(url)
    assert "hunter2" not in repr(db)
    db.dispose()
