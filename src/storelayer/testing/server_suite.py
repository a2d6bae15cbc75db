"""The server-backend suite: what a client/server backend must get right beyond the
conformance suite. Engine options, connect failures sorted into "retry" and "give up",
passwords, constraint names, upserts, health and provisioning, against a real server.
A backend's test module imports it with one line and supplies four fixtures::

    from storelayer.testing.server_suite import *  # noqa: F403

    @pytest.fixture(scope="module")
    def server_backend() -> Backend: ...        # the backend under test
    @pytest.fixture(scope="module")
    def expected_errors() -> dict[str, str]: ...  # see below
    @pytest.fixture(scope="module")
    def default_options() -> dict[str, Any]: ...  # pool_recycle and connect_args by default
    @pytest.fixture
    def password_url() -> URL: ...              # an account whose password is checked

``expected_errors`` maps each failure the suite provokes to a fragment of what the
error says (a message or an error number): ``closed port``, ``silent server``,
``hang-up``, ``unknown database``, ``wrong password``; and ``primary key`` to the name
the server gives the ``items`` table's primary key. ``connect_timeout_args`` (default:
``connect_timeout``) names every driver argument that must follow ``connect_timeout``;
define it again to change it. The helpers below serve the backend's own tests too.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from typing import Any

import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

import storelayer
from storelayer.backend import Backend
from storelayer.config import Settings
from storelayer.database import Database
from storelayer.errors import ConnectionFailed
from storelayer.plugins import PluginManager
from storelayer.testing._provision import (
    Provisioner,
    Unavailable,
    provision_or_skip,
    skip_or_fail,
)

# -- helpers ------------------------------------------------------------------------------


def engine_options(
    backend: Backend, url: str | URL | None = None, **settings: Any
) -> dict[str, Any]:
    """``backend.engine_options()`` for ``url`` (default: a placeholder on host ``h``)
    and ``settings``, with no environment."""
    url = make_url(url or f"{backend.schemes[0]}://u@h/db")
    return backend.engine_options(url, Settings.from_env(url, environ={}, **settings))


def pool_settings(options: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(options[k] for k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"))


def compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect))


def connect_error(backend: Backend, url: URL, **settings: Any) -> sa_exc.OperationalError:
    """What connecting through an engine built from ``engine_options()`` raises."""
    engine = create_engine(backend.normalize_url(url), **engine_options(backend, url, **settings))
    try:
        with pytest.raises(sa_exc.OperationalError) as caught:
            engine.connect()
        return caught.value
    finally:
        engine.dispose()


def assert_transient(backend: Backend, error: BaseException) -> None:
    assert backend.errors.is_transient(error), error
    assert not backend.errors.is_connection_refused_for_good(error), error


def assert_refused_for_good(backend: Backend, error: BaseException) -> None:
    assert backend.errors.is_connection_refused_for_good(error), error
    assert not backend.errors.is_transient(error), error


def everything_said(error: BaseException) -> str:
    """The error, its repr and every error chained to it, as text."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def listener(serve: Callable[[socket.socket], None] | None = None) -> Iterator[int]:
    """A TCP port on 127.0.0.1; ``serve(conn)`` answers each connection, else the kernel
    completes the TCP handshake and nothing is ever said."""
    server = socket.create_server(("127.0.0.1", 0), backlog=8)
    server.settimeout(0.05)
    stop = threading.Event()

    def loop(answer: Callable[[socket.socket], None]) -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # timeout: look at stop again
                continue
            with conn:
                conn.settimeout(5)
                with suppress(OSError):
                    answer(conn)

    thread = threading.Thread(target=loop, args=(serve,), daemon=True) if serve else None
    if thread:
        thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        if thread:
            thread.join(timeout=5)
        server.close()


# -- pure: engine options -------------------------------------------------------------------


@pytest.fixture(scope="module")
def connect_timeout_args() -> tuple[str, ...]:
    return ("connect_timeout",)


def test_every_scheme_finds_the_plugin_and_normalizes_to_the_default_driver(
    server_backend: Backend,
) -> None:
    """The plugin is found through its entry point; a pasted URL keeps all but its scheme."""
    backend, driver = server_backend, server_backend.default_driver
    manager = PluginManager(environ={})
    for scheme in (*backend.schemes, *(f"{s}+{driver}" for s in backend.schemes)):
        assert isinstance(manager.resolve(scheme), type(backend)), scheme
        url = backend.normalize_url(make_url(f"{scheme}://u:pw@db.example:1234/app"))
        assert url.drivername == f"{backend.dialect}+{driver}", scheme
        assert (url.username, url.password, url.host, url.port, url.database) == (
            "u", "pw", "db.example", 1234, "app"
        )
    other = backend.normalize_url(make_url(f"{backend.schemes[-1]}+other://u@h/db"))
    assert other.drivername == f"{backend.dialect}+other"  # an explicit driver is kept


def test_default_engine_options(server_backend: Backend, default_options: dict[str, Any]) -> None:
    options = engine_options(server_backend)
    assert options["poolclass"].__name__ == "QueuePool" and options["pool_pre_ping"] is True
    assert pool_settings(options) == (5, 10, 30, default_options["pool_recycle"])
    assert options["connect_args"] == default_options["connect_args"]


def test_user_pool_settings_win_from_keywords_or_the_environment(server_backend: Backend) -> None:
    settings = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 2.5, "pool_recycle": -1}
    assert pool_settings(engine_options(server_backend, None, **settings)) == (20, 0, 2.5, -1)
    env = {"STORELAYER_POOL_SIZE": "7", "STORELAYER_POOL_RECYCLE": "60"}
    url = make_url(f"{server_backend.schemes[0]}://u@h/db")
    options = server_backend.engine_options(url, Settings.from_env(url, environ=env))
    assert (options["pool_size"], options["pool_recycle"], options["max_overflow"]) == (7, 60, 10)


@pytest.mark.parametrize(("given", "sent"), [(0.2, 1), (1, 1), (2.5, 3), (10, 10), (0, 1)])
def test_connect_timeout_is_whole_seconds_of_at_least_one(
    server_backend: Backend, connect_timeout_args: tuple[str, ...], given: float, sent: int
) -> None:
    args = engine_options(server_backend, connect_timeout=given)["connect_args"]
    assert {name: args[name] for name in connect_timeout_args} == dict.fromkeys(
        connect_timeout_args, sent
    )


# -- a real server: connecting -----------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(server_backend: Backend, storelayer_provisioner: Provisioner) -> URL:
    """The server to test against: skipped when unreachable, failed when CI is set."""
    try:
        return storelayer_provisioner.server_url(server_backend)
    except Unavailable as error:
        skip_or_fail(str(error))


@pytest.fixture(scope="module")
def scratch_url(server_backend: Backend, storelayer_provisioner: Provisioner) -> URL:
    """A database of its own, dropped when the test session ends."""
    return provision_or_skip(storelayer_provisioner, server_backend)


@pytest.mark.parametrize("failure", ["closed port", "silent server", "hang-up"])
def test_connect_failures_end_within_connect_timeout_and_are_transient(
    server_backend: Backend, server_url: URL, expected_errors: Mapping[str, str], failure: str
) -> None:
    """Nothing listens; or the server accepts the TCP connection and never says a word (the
    timeout must cover the handshake too, not only the TCP connect); or it hangs up."""
    serve = (lambda conn: None) if failure == "hang-up" else None
    with nullcontext(free_port()) if failure == "closed port" else listener(serve) as port:
        started = time.monotonic()
        url = server_url.set(host="127.0.0.1", port=port)
        error = connect_error(server_backend, url, connect_timeout=1)
        elapsed = time.monotonic() - started
    assert expected_errors[failure] in str(error)
    assert elapsed < 6  # libpq makes a 1 s timeout 2 s
    assert_transient(server_backend, error)


def test_unknown_database_is_refused_for_good(
    server_backend: Backend, server_url: URL, expected_errors: Mapping[str, str]
) -> None:
    missing = server_url.set(database=f"storelayer_missing_{uuid.uuid4().hex[:8]}")
    error = connect_error(server_backend, missing)
    assert expected_errors["unknown database"] in str(error)
    assert_refused_for_good(server_backend, error)
    assert_refused_for_good(server_backend, error.orig or error)


def test_connect_failures_through_connect_say_whether_to_retry(server_url: URL) -> None:
    """... in one line that names the host and never the password, as health does."""
    port, secret = free_port(), "Sup3r-s3cret-pw"
    missing = storelayer.connect(server_url.set(database=f"missing_{uuid.uuid4().hex[:8]}"))
    refused = storelayer.connect(server_url.set(host="127.0.0.1", port=port, password=secret))
    try:
        for db, transient in ((missing, False), (refused, True)):
            with pytest.raises(ConnectionFailed) as caught:
                db.engine.connect()
            assert caught.value.transient is transient
            assert db.is_transient(caught.value) is transient
        with pytest.raises(ConnectionFailed) as caught, refused.session() as s:
            s.execute(text("SELECT 1"))
        message, report = str(caught.value), refused.health()
        assert "\n" not in message and secret not in message and caught.value.transient
        assert f"127.0.0.1:{port}" in message and "refused" in message.lower()
        assert not report.healthy and secret not in str(report.to_dict())
    finally:
        missing.dispose()
        refused.dispose()


def test_the_right_password_connects(password_url: URL) -> None:
    with storelayer.connect(password_url) as db:
        report = db.health()
    assert report.healthy, report
    assert str(password_url.password) not in str(report.to_dict())


def test_a_wrong_password_is_one_line_not_retried_and_never_shown(
    password_url: URL, expected_errors: Mapping[str, str]
) -> None:
    wrong = password_url.set(password=f"not-{password_url.password}")
    with storelayer.connect(wrong) as db:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as caught:
            db.run_in_transaction(lambda s: s.execute(text("SELECT 1")), retries=5)
        elapsed = time.monotonic() - started
        retries = db.metrics()["engines"]["primary"]["retries"]
    message, said = str(caught.value), everything_said(caught.value)
    assert elapsed < 1.0 and retries == 0 and caught.value.transient is False
    assert "\n" not in message and expected_errors["wrong password"] in message
    assert "check the user, password and database name" in message
    assert str(password_url.password) not in said and str(wrong.password) not in said


# -- a real server: constraint names, upserts, health ------------------------------------

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(40), nullable=False),
    Column("name", String(40), nullable=True),
    Column("qty", Integer, nullable=False),
    CheckConstraint("qty >= 0", name="ck_items_qty"),
    UniqueConstraint("sku", name="uq_items_sku"),
    UniqueConstraint("name", name="uq_items_name"),
    mysql_engine="InnoDB",
)
CHILDREN = Table(
    "children",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("item_id", Integer, ForeignKey("items.id", name="fk_children_item")),
    mysql_engine="InnoDB",
)


@pytest.fixture(scope="module")
def scratch_db(scratch_url: URL) -> Iterator[Database]:
    """A ``Database`` on the scratch database, with the ``items`` and ``children`` tables."""
    with storelayer.connect(scratch_url) as database:
        with database.engine.begin() as conn:
            METADATA.create_all(conn)
        yield database


@pytest.fixture
def items(scratch_db: Database) -> Database:
    """``scratch_db`` with its tables emptied."""
    with scratch_db.session() as s:
        s.execute(CHILDREN.delete())
        s.execute(ITEMS.delete())
    return scratch_db


def db_error(
    db: Database, statement: Any, kind: type[sa_exc.DBAPIError] = sa_exc.IntegrityError
) -> Any:
    """The error ``statement`` raises, run outside any storelayer session."""
    with db.engine.connect() as conn, pytest.raises(kind) as caught:
        conn.execute(statement)
    return caught.value


def quantities(db: Database) -> dict[str, int]:
    with db.read_session() as s:
        return {row.sku: row.qty for row in s.execute(select(ITEMS.c.sku, ITEMS.c.qty))}


def test_constraint_names_come_from_the_server(
    server_backend: Backend, items: Database, expected_errors: Mapping[str, str]
) -> None:
    with items.session() as s:
        s.execute(ITEMS.insert().values(id=1, sku="a", qty=1))
        s.execute(CHILDREN.insert().values(id=1, item_id=1))
    found: dict[str, Any] = {
        "duplicate": db_error(items, ITEMS.insert().values(id=2, sku="a", qty=1)),
        "primary": db_error(items, ITEMS.insert().values(id=1, sku="b", qty=1)),
        "orphan": db_error(items, CHILDREN.insert().values(id=2, item_id=99)),
        "parent": db_error(items, ITEMS.delete().where(ITEMS.c.id == 1)),
        "check": db_error(items, ITEMS.insert().values(id=3, sku="c", qty=-1)),
    }
    names = {kind: server_backend.errors.constraint_name(error) for kind, error in found.items()}
    assert names == {
        "duplicate": "uq_items_sku",
        "primary": expected_errors["primary key"],
        "orphan": "fk_children_item",
        "parent": "fk_children_item",
        "check": "ck_items_qty",
    }
    assert not any(server_backend.errors.is_transient(error) for error in found.values())


def test_a_conflict_in_a_session_names_the_constraint(items: Database) -> None:
    with pytest.raises(storelayer.Conflict) as caught, items.session() as s:
        rows = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": "a", "qty": 1}]
        s.execute(ITEMS.insert(), rows)
    assert caught.value.constraint == "uq_items_sku"


def test_upsert_round_trip(items: Database) -> None:
    rows = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": "b", "qty": 2}]
    with items.session() as s:
        s.execute(items.backend.ops.upsert(ITEMS, rows, ["sku"], ["qty"]))
    with items.session() as s:
        changed = [{"id": 3, "sku": "a", "qty": 10}, {"id": 4, "sku": "c", "qty": 3}]
        s.execute(items.backend.ops.upsert(ITEMS, changed, ["sku"], ["qty"]))
    assert quantities(items) == {"a": 10, "b": 2, "c": 3}
    with items.session() as s:
        s.execute(items.backend.ops.upsert(ITEMS, [{"id": 5, "sku": "b", "qty": 99}], ["sku"], []))
    assert quantities(items) == {"a": 10, "b": 2, "c": 3}


def test_health_reports_the_server_version(server_backend: Backend, scratch_db: Database) -> None:
    report = scratch_db.health()
    assert report.healthy, report.error
    assert report.backend == server_backend.name
    assert report.server_version and report.server_version[0].isdigit()
    assert " " not in report.server_version
    with scratch_db.engine.connect() as conn:
        assert report.server_version in str(conn.execute(text("SELECT version()")).scalar())


def test_a_server_that_replicates_nothing_has_no_replica_lag(
    server_backend: Backend, scratch_db: Database
) -> None:
    with scratch_db.engine.connect() as conn:
        assert server_backend.replication.lag(conn) is None


#: The fixtures and tests a backend's test module takes in with ``import *``.
__all__ = ["connect_timeout_args", "items", "scratch_db", "scratch_url", "server_url"]
__all__ += sorted(name for name in dict(globals()) if name.startswith("test_"))
