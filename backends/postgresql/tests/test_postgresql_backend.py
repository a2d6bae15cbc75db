"""The PostgreSQL backend: the server suite (storelayer.testing.server_suite) plus pure
option building, error classification and round trips of PostgreSQL's own, against a
real server (STORELAYER_TEST_POSTGRESQL_URL, else the local default)."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import psycopg2  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

import storelayer
from storelayer import Backend, ConfigurationError
from storelayer.testing import server_suite, skip_or_fail
from storelayer.testing.server_suite import *  # noqa: F403
from storelayer.testing.server_suite import (
    compiled,
    connect_error,
    engine_options,
    listener,
)
from storelayer_postgresql import PostgreSQLBackend
from storelayer_postgresql.testing import PostgreSQLServer, find_bindir, make_workdir

BACKEND = PostgreSQLBackend()
options = partial(engine_options, BACKEND)
assert_transient = partial(server_suite.assert_transient, BACKEND)
assert_refused_for_good = partial(server_suite.assert_refused_for_good, BACKEND)
#: The password of the private server that checks passwords.
SECRET = "Sup3r-s3cret-pw"


@pytest.fixture(scope="module")
def server_backend() -> Backend:
    return BACKEND


@pytest.fixture(scope="module")
def expected_errors() -> dict[str, str]:
    return {
        "closed port": "Connection refused",
        "silent server": "timeout expired",
        "hang-up": "closed the connection",
        "unknown database": "does not exist",
        "wrong password": "password authentication failed",
        "primary key": "items_pkey",
    }


@pytest.fixture(scope="module")
def default_options() -> dict[str, Any]:
    args = {"connect_timeout": 10, "application_name": "storelayer", "tcp_user_timeout": 10_000}
    keepalives = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5}
    return {"pool_recycle": 1800, "connect_args": {**args, **keepalives, "keepalives_count": 3}}


@pytest.fixture(scope="module")
def password_url() -> Iterator[URL]:
    """A private server that checks passwords (the shared one trusts every local user)."""
    if find_bindir() is None:
        skip_or_fail("PostgreSQL server binaries not found; set PG_BINDIR")
    with PostgreSQLServer(make_workdir(), password=SECRET) as server:
        yield server.url


# -- pure: URLs and engine options ------------------------------------------------------


def test_application_name_follows_settings() -> None:
    assert options(application_name="billing")["connect_args"]["application_name"] == "billing"


@pytest.mark.parametrize(("seconds", "ms"), [(2.5, 2500), (0.0001, 1), (0, 0), (30, 30000)])
def test_statement_timeout_becomes_a_session_option_in_milliseconds(
    seconds: float, ms: int
) -> None:
    assert "options" not in options()["connect_args"]
    args = options(statement_timeout=seconds)["connect_args"]
    assert args["options"] == f"-c statement_timeout={ms}"


def test_url_query_parameters_are_never_overridden() -> None:
    url = (
        "postgresql://u@h/db?connect_timeout=3&application_name=mine"
        "&options=-c%20search_path%3Dapp&keepalives_idle=60"
    )
    args = options(url, statement_timeout=1)["connect_args"]
    for key in ("connect_timeout", "application_name", "options", "keepalives_idle"):
        assert key not in args
    assert args["keepalives"] == 1


@pytest.mark.parametrize(
    "name", ["", "a-b", "x; DROP DATABASE postgres", 'q"uote', "1abc", "a" * 64]
)
def test_database_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        BACKEND.provisioning.create_database(make_url("postgresql://u@127.0.0.1:1/postgres"), name)
    with pytest.raises(ConfigurationError, match="plain identifier"):
        BACKEND.provisioning.drop_database(make_url("postgresql://u@127.0.0.1:1/postgres"), name)


def test_upsert_compiles_to_on_conflict() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", Integer))
    dialect = create_engine("postgresql+psycopg2://").dialect
    update = compiled(BACKEND.ops.upsert(table, [{"id": 1, "v": 2}], ["id"], ["v"]), dialect)
    assert "ON CONFLICT (id) DO UPDATE SET v = excluded.v" in update
    nothing = compiled(BACKEND.ops.upsert(table, [{"id": 1, "v": 2}], ["id"], []), dialect)
    assert "ON CONFLICT (id) DO NOTHING" in nothing


# -- a real server ----------------------------------------------------------------------


def raw_connect(url: URL, *, autocommit: bool = False) -> Any:
    args = url.translate_connect_args(username="user", database="dbname")
    conn = psycopg2.connect(**args, **url.query)
    conn.autocommit = autocommit
    return conn


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("client went away")
        data += chunk
    return data


def refuse_startup(sqlstate: str, message: str) -> Callable[[socket.socket], None]:
    """Serve the FATAL ErrorResponse a PostgreSQL server sends to a refused startup."""

    def serve(conn: socket.socket) -> None:
        (length,) = struct.unpack("!I", recv_exactly(conn, 4))
        recv_exactly(conn, length - 4)  # the startup packet: protocol, user, database
        fields = [(b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message)]
        body = b"".join(tag + value.encode() + b"\0" for tag, value in fields) + b"\0"
        conn.sendall(b"E" + struct.pack("!I", len(body) + 4) + body)

    return serve


def test_unknown_role_is_refused_for_good(server_url: URL) -> None:
    error = connect_error(BACKEND, server_url.set(username=f"nobody_{uuid.uuid4().hex[:8]}"))
    assert "does not exist" in str(error)
    assert_refused_for_good(error)


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("28P01", 'password authentication failed for user "alice"'),
        ("28000", 'no pg_hba.conf entry for host "10.0.0.7", user "alice", database "app"'),
    ],
)
def test_refused_authentication_is_refused_for_good(sqlstate: str, message: str) -> None:
    # The shared test server trusts every local connection and cannot be reconfigured,
    # so the server's refusal is replayed at the protocol level; libpq builds the error.
    url = make_url("postgresql://alice@127.0.0.1/app?sslmode=disable&gssencmode=disable")
    with listener(refuse_startup(sqlstate, message)) as port:
        error = connect_error(BACKEND, url.set(port=port))
    assert message in str(error)
    assert_refused_for_good(error)


@pytest.fixture
def counter(scratch_url: URL) -> URL:
    """A table with one row in the scratch database."""
    with raw_connect(scratch_url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS counter")
        cur.execute("CREATE TABLE counter (id int PRIMARY KEY, n int)")
        cur.execute("INSERT INTO counter VALUES (1, 0), (2, 0)")
    conn.close()
    return scratch_url


def test_serialization_failure_is_transient(counter: URL) -> None:
    first = raw_connect(counter)
    second = raw_connect(counter, autocommit=True)
    try:
        first.set_session(isolation_level="REPEATABLE READ")
        cur = first.cursor()
        cur.execute("SELECT n FROM counter WHERE id = 1")
        second.cursor().execute("UPDATE counter SET n = n + 1 WHERE id = 1")
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
    finally:
        first.close()
        second.close()
    assert caught.value.pgcode == "40001"
    assert_transient(caught.value)


def test_lock_not_available_is_transient(counter: URL) -> None:
    holder, waiter = raw_connect(counter), raw_connect(counter)
    try:
        holder.cursor().execute("SELECT * FROM counter WHERE id = 1 FOR UPDATE")
        with pytest.raises(psycopg2.Error) as caught:
            waiter.cursor().execute("SELECT * FROM counter WHERE id = 1 FOR UPDATE NOWAIT")
    finally:
        holder.close()
        waiter.close()
    assert caught.value.pgcode == "55P03"
    assert_transient(caught.value)


def test_deadlock_is_transient(counter: URL) -> None:
    first, second = raw_connect(counter), raw_connect(counter)
    errors: list[Any] = []

    def update(conn: Any, row: int) -> None:
        try:
            conn.cursor().execute("UPDATE counter SET n = n + 1 WHERE id = %s", (row,))
        except psycopg2.Error as error:
            errors.append(error)
            conn.rollback()

    try:
        update(first, 1)
        update(second, 2)
        blocked = threading.Thread(target=update, args=(first, 2))
        blocked.start()
        time.sleep(0.2)
        update(second, 1)  # one of the two is chosen as the victim (deadlock_timeout 1 s)
        blocked.join(timeout=30)
    finally:
        first.close()
        second.close()
    assert [e.pgcode for e in errors] == ["40P01"]
    assert_transient(errors[0])


def test_terminated_session_is_transient(counter: URL) -> None:
    engine = create_engine(BACKEND.normalize_url(counter))
    killer = raw_connect(counter, autocommit=True)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            terminate = threading.Timer(
                0.3, lambda: killer.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
            )
            terminate.start()
            with pytest.raises(sa_exc.OperationalError) as caught:
                conn.execute(text("SELECT pg_sleep(10)"))
            terminate.join()
    finally:
        killer.close()
        engine.dispose()
    # libpq reports the server's FATAL 57P01 as "server closed the connection
    # unexpectedly", with no SQLSTATE: the message and the invalidation must do.
    assert getattr(caught.value.orig, "pgcode", None) in (None, "57P01")
    assert caught.value.connection_invalidated
    assert_transient(caught.value)
    assert_transient(caught.value.orig or caught.value)


def test_statement_timeout_cancels_a_long_query_and_is_not_transient(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url, statement_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(storelayer.StatementTimeout) as caught, db.session() as s:
            s.execute(text("SELECT pg_sleep(3)"))
        assert time.monotonic() - started < 2
    finally:
        db.dispose()
    driver_error = caught.value.__cause__
    assert isinstance(driver_error, sa_exc.OperationalError)
    assert getattr(driver_error.orig, "pgcode", None) == "57014"
    assert not BACKEND.errors.is_transient(driver_error)


def test_sessions_carry_application_name_and_keepalives(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url, application_name="storelayer-tests")
    try:
        with db.engine.connect() as conn:
            name = conn.execute(text("SELECT current_setting('application_name')")).scalar()
            dsn = conn.connection.dbapi_connection.get_dsn_parameters()  # type: ignore[union-attr]
    finally:
        db.dispose()
    assert name == "storelayer-tests"
    assert (dsn["keepalives"], dsn["keepalives_idle"], dsn["connect_timeout"]) == ("1", "10", "10")


# -- provisioning ---------------------------------------------------------------------


def test_create_and_drop_database_quote_the_name(server_url: URL) -> None:
    name = f"Storelayer_Mixed_{uuid.uuid4().hex[:8]}"
    url = BACKEND.provisioning.create_database(server_url, name)
    assert url.database == name
    try:
        with raw_connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == (name,)
        conn.close()
        holder = raw_connect(url)  # FORCE ends sessions still connected
        BACKEND.provisioning.drop_database(server_url, name)
        holder.close()
    finally:
        BACKEND.provisioning.drop_database(server_url, name)  # idempotent
    with raw_connect(server_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert cur.fetchone() == (0,)
    conn.close()
