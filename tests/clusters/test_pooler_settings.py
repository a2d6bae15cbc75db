"""``pooler=`` / ``STORELAYER_POOLER`` and ``engine_options["connect_args"]``: what reaches
``create_engine`` (pure, no server)."""

from __future__ import annotations

import pytest

from storelayer import ConfigurationError, Settings
from storelayer._engines import engine_options
from storelayer.plugins import get_plugin_manager

URL = "postgresql://app@127.0.0.1:6432/app"


def postgresql_options(is_async: bool = False, **settings: object) -> dict[str, object]:
    backend = get_plugin_manager().backends()["postgresql"]
    chosen = Settings.from_env(URL, environ={}, **settings)
    url = backend.normalize_url(chosen.url)
    return engine_options(backend, url, chosen, is_async=is_async)


def test_the_pooler_comes_from_the_environment_and_is_checked() -> None:
    env = {"STORELAYER_POOLER": "Transaction"}
    assert Settings.from_env(URL, environ=env).pooler == "transaction"
    assert Settings.from_env(URL, environ={"STORELAYER_POOLER": "none"}).pooler is None
    with pytest.raises(ConfigurationError, match=r"STORELAYER_POOLER.*transaction"):
        Settings.from_env(URL, environ={"STORELAYER_POOLER": "statement"})


def test_transaction_pooling_sends_no_startup_options_and_no_prepares() -> None:
    plain = postgresql_options(statement_timeout=2)
    assert plain["connect_args"]["options"] == "-c statement_timeout=2000"  # type: ignore[index]
    pooled = postgresql_options(pooler="transaction", statement_timeout=2)
    assert "options" not in pooled["connect_args"]  # type: ignore[operator]
    assert pooled["execution_options"] == {
        "storelayer_pooler": "transaction",
        "storelayer_statement_timeout_ms": 2000,
    }
    pooled_async = postgresql_options(True, pooler="transaction")
    assert pooled_async["connect_args"]["prepare_threshold"] is None  # type: ignore[index]
    assert "prepare_threshold" not in postgresql_options(True)["connect_args"]  # type: ignore[operator]


def test_user_connect_args_merge_with_the_backends_own() -> None:
    options = postgresql_options(
        engine_options={"connect_args": {"sslmode": "disable", "application_name": "mine"}}
    )
    args = options["connect_args"]
    assert args["sslmode"] == "disable"  # type: ignore[index]
    assert args["application_name"] == "mine"  # type: ignore[index]
    assert args["keepalives_idle"] == 10  # type: ignore[index]
    assert args["connect_timeout"] == 10  # type: ignore[index]
