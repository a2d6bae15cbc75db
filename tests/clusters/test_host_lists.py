"""Host lists in URLs (pure, no server): libpq's ``h1:p1,h2:p2`` form and SQLAlchemy's
``?host=`` form parse to the same URL, replica lists split between URLs, not inside a
host list, and the dump tools get every host."""

from __future__ import annotations

import pytest

from storelayer import ConfigurationError, Settings
from storelayer.config import is_host_list, mask_url, parse_url, url_hosts
from storelayer_postgresql.backup import libpq_environment

PASTED = (
    "postgres://127.0.0.1:6401,127.0.0.1:6402/app?target_session_attrs=read-write&sslmode=prefer"
)


def test_libpq_and_sqlalchemy_forms_are_one_url() -> None:
    libpq = parse_url("postgresql://app:secret@h1:6401,h2:6402/app?target_session_attrs=read-write")
    alchemy = parse_url(
        "postgresql://app:secret@/app?host=h1:6401&host=h2:6402&target_session_attrs=read-write"
    )
    assert libpq == alchemy
    assert url_hosts(libpq) == [("h1", 6401), ("h2", 6402)]
    assert is_host_list(libpq)
    assert "secret" not in mask_url(libpq)


def test_the_pasted_pg_autoctl_uri_parses() -> None:
    url = parse_url(PASTED)
    assert url.database == "app"
    assert url_hosts(url) == [("127.0.0.1", 6401), ("127.0.0.1", 6402)]
    assert url.query["target_session_attrs"] == "read-write"


def test_hosts_without_ports_and_ipv6() -> None:
    url = parse_url("mysql://root@db1,db2:3307,[::1]:3308/app")
    assert url_hosts(url) == [("db1", None), ("db2", 3307), ("::1", 3308)]
    assert url_hosts(parse_url("postgresql://u@h:5/db")) == [("h", 5)]
    assert not is_host_list(parse_url("postgresql://u@h:5/db"))


def test_a_malformed_host_list_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not a database URL"):
        parse_url("postgresql://u@h1:x,h2/db")


def test_replica_urls_split_between_urls_not_inside_host_lists() -> None:
    env = {
        "DATABASE_REPLICA_URLS": "postgresql://a:1,b:2/db?target_session_attrs=standby, "
        "postgresql://c/db"
    }
    replicas = Settings.from_env("sqlite://", environ=env).replica_urls
    assert [url_hosts(u) for u in replicas] == [[("a", 1), ("b", 2)], [("c", None)]]


def test_the_dump_tools_get_every_host_and_the_session_attrs() -> None:
    env = libpq_environment(parse_url(PASTED), {"PGHOST": "elsewhere"}, None)
    assert env["PGHOST"] == "127.0.0.1,127.0.0.1"
    assert env["PGPORT"] == "6401,6402"
    assert env["PGTARGETSESSIONATTRS"] == "read-write"
    assert env["PGDATABASE"] == "app"
    single = libpq_environment(parse_url("postgresql://u@h:5/db"), {}, None)
    assert (single["PGHOST"], single["PGPORT"]) == ("h", "5")
