"""Bad input, table-driven: every case gets its exact error type and a message fragment
that names the input and the fix, no output holds the password, the data is left as it
was, and the CLI prints one line and exits 2 (the traceback only with --debug)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Integer, String, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import (
    BackendNotFound,
    ConfigurationError,
    ConnectionFailed,
    InvalidValue,
    QueryError,
    Session,
    StorelayerError,
)
from storelayer.cli import cli
from storelayer.testing.server_suite import everything_said

SECRET = "Pw0rd-of-9-lives"
PREFIX = "storelayer: error:"


# -- configuration and connection -------------------------------------------------------

#: (case, url, environment, error type, message fragment)
CONNECT_CASES: list[tuple[str, str | None, dict[str, str], type[StorelayerError], str]] = [
    (
        "malformed DATABASE_URL",
        None,
        {"DATABASE_URL": f"postgresql://app:{SECRET}@db:port/app"},
        ConfigurationError,
        "DATABASE_URL is not a database URL",
    ),
    (
        "malformed url argument",
        f"app:{SECRET}@db/app",
        {},
        ConfigurationError,
        "is not a database URL: 'app:***@db/app'",
    ),
    (
        "unknown scheme",
        f"oracle://app:{SECRET}@db/app",
        {},
        BackendNotFound,
        "no backend serves URL scheme 'oracle'",
    ),
    (
        "missing driver",
        f"mysql+mysqldb://app:{SECRET}@127.0.0.1/app",
        {},
        ConfigurationError,
        "cannot load the database driver 'mysqldb'",
    ),
    (
        "unknown driver",
        f"postgresql+nosuchdriver://app:{SECRET}@127.0.0.1/app",
        {},
        ConfigurationError,
        "use the postgresql backend's default driver (postgresql+psycopg2://...)",
    ),
    (
        "unreachable host",
        f"postgresql://app:{SECRET}@127.0.0.1:1/app",
        {},
        ConnectionFailed,
        "check that the server runs and the host and port are right",
    ),
    (
        "database that does not exist (postgresql)",
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/no_such_database_{uuid.uuid4().hex[:6]}",
        {},
        ConnectionFailed,
        "check the user, password and database name",
    ),
    (
        "database that does not exist (mysql)",
        f"mysql://root@127.0.0.1:3306/no_such_database_{uuid.uuid4().hex[:6]}",
        {},
        ConnectionFailed,
        "check the user, password and database name",
    ),
]


def open_and_use(url: str | None, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """connect(), then one unit of work."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with storelayer.connect(url, connect_timeout=2) as db, db.session() as s:
        s.execute(text("SELECT 1"))


@pytest.mark.parametrize(
    ("url", "env", "kind", "fragment"),
    [case[1:] for case in CONNECT_CASES],
    ids=[case[0] for case in CONNECT_CASES],
)
def test_bad_configuration_gets_a_specific_error(
    url: str | None,
    env: dict[str, str],
    kind: type[StorelayerError],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="storelayer")
    with pytest.raises(StorelayerError) as caught:
        open_and_use(url, env, monkeypatch)
    assert type(caught.value) is kind
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
    assert SECRET not in everything_said(caught.value) + caplog.text


@pytest.mark.parametrize(
    ("url", "env", "fragment"),
    [(c[1], c[2], c[4]) for c in CONNECT_CASES],
    ids=[c[0] for c in CONNECT_CASES],
)
def test_the_cli_prints_one_line_and_exits_2(
    url: str | None, env: dict[str, str], fragment: str
) -> None:
    args = ["--url", url] if url else []
    quiet = CliRunner().invoke(cli, [*args, "migrate", "current"], env={"DATABASE_URL": "", **env})
    assert quiet.exit_code == 2, quiet.output
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX) and fragment in lines[0]
    loud = CliRunner().invoke(
        cli, [*args, "--debug", "migrate", "current"], env={"DATABASE_URL": "", **env}
    )
    assert loud.exit_code == 2 and "Traceback" in loud.stderr
    assert SECRET not in quiet.output + quiet.stderr + loud.output + loud.stderr


# -- queries and values -------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "resilience_people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


SEED = ["ada", "grace", "linus"]

#: (case, what the caller does, error type or None when it must succeed, message fragment)
QUERY_CASES: list[tuple[str, Callable[[Any], Any], type[StorelayerError] | None, str]] = [
    (
        "injection in a filter name",
        lambda r: r.list(**{"name; DROP TABLE resilience_people": 1}),
        QueryError,
        "has no column 'name; DROP TABLE resilience_people' to filter on",
    ),
    (
        "injection in a lookup",
        lambda r: r.list(**{"name__eq; DROP TABLE x": 1}),
        QueryError,
        "unknown lookup 'eq; DROP TABLE x'",
    ),
    (
        "injection in order_by",
        lambda r: r.list(order_by="name; DROP TABLE resilience_people"),
        QueryError,
        "to order by; valid names: id, name",
    ),
    (
        "injection in a value",
        lambda r: r.list(name="x'; DROP TABLE resilience_people; --"),
        None,
        "",
    ),
    ("negative limit", lambda r: r.list(limit=-1), QueryError, "limit must be a whole number >= 0"),
    (
        "negative offset",
        lambda r: r.list(offset=-5),
        QueryError,
        "offset must be a whole number >= 0",
    ),
    (
        "huge limit",
        lambda r: r.list(limit=2**64),
        QueryError,
        "limit must be at most 9223372036854775807",
    ),
    ("huge page size", lambda r: r.page(page=1, per_page=10**12), None, ""),
    (
        "non-UTF-8 bytes as text",
        lambda r: r.create(name=b"caf\xe9"),
        InvalidValue,
        "Person.name holds text, got bytes: they are not valid UTF-8",
    ),
    (
        "undecodable text (surrogate escapes)",
        lambda r: r.create(name=b"caf\xe9".decode("utf-8", "surrogateescape")),
        InvalidValue,
        "is a lone surrogate",
    ),
    ("NUL in text", lambda r: r.create(name="a\x00b"), InvalidValue, "NUL character at position 1"),
    (
        "bytes in a filter",
        lambda r: r.list(name__in=["ada", b"\xff"]),
        InvalidValue,
        "filter 'name__in' on Person.name holds text, got bytes",
    ),
]


@pytest.fixture
def people(database_url: URL, backend: storelayer.Backend) -> Iterator[storelayer.Database]:
    with storelayer.connect(database_url, backend=backend.name) as db:
        Base.metadata.create_all(db.engine)
        with db.session() as s:
            s.execute(Person.__table__.delete())
            s.add_all([Person(id=n, name=name) for n, name in enumerate(SEED, 1)])
        yield db


@pytest.mark.parametrize(
    ("action", "kind", "fragment"), [c[1:] for c in QUERY_CASES], ids=[c[0] for c in QUERY_CASES]
)
def test_bad_query_input_gets_a_specific_error_and_changes_nothing(
    people: storelayer.Database,
    action: Callable[[Any], Any],
    kind: type[StorelayerError] | None,
    fragment: str,
) -> None:
    def unit(s: Session) -> Any:
        return action(s.repository(Person))

    if kind is None:
        people.run_in_transaction(unit)
    else:
        with pytest.raises(StorelayerError) as caught:
            people.run_in_transaction(unit)
        assert type(caught.value) is kind and fragment in str(caught.value)
    with people.read_session() as s:
        assert sorted(p.name for p in s.repository(Person).list()) == sorted(SEED)


def test_an_injection_string_is_stored_as_the_value_it_is(people: storelayer.Database) -> None:
    bobby = "Robert'); DROP TABLE resilience_people;--"
    people.run_in_transaction(lambda s: s.repository(Person).create(id=99, name=bobby))
    with people.read_session() as s:
        assert s.repository(Person).get_by(name=bobby) is not None
        assert s.repository(Person).count() == len(SEED) + 1
