"""The MySQL/MariaDB backend: the server suite (storelayer.testing.server_suite) plus
pure option building, error classification and round trips of MySQL's own, against a
real server (STORELAYER_TEST_MYSQL_URL, else the local default)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pymysql  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

import storelayer
from storelayer import Backend, ConfigurationError
from storelayer.testing import server_suite
from storelayer.testing.server_suite import *  # noqa: F403
from storelayer.testing.server_suite import (
    ITEMS,
    compiled,
    connect_error,
    db_error,
    engine_options,
    quantities,
)
from storelayer_mysql import MySQLBackend
from storelayer_mysql.connection import (
    CONVERSIONS,
    INIT_COMMAND,
    SQL_MODE,
    STREAM_WRITE_TIMEOUT,
)

BACKEND = MySQLBackend()
options = partial(engine_options, BACKEND)
assert_transient = partial(server_suite.assert_transient, BACKEND)
assert_refused_for_good = partial(server_suite.assert_refused_for_good, BACKEND)


@pytest.fixture(scope="module")
def server_backend() -> Backend:
    return BACKEND


@pytest.fixture(scope="module")
def expected_errors() -> dict[str, str]:
    return {
        "closed port": "(2003,",
        "silent server": "(2013,",
        "hang-up": "(2013,",
        "unknown database": "(1049,",
        "wrong password": "Access denied",
        "primary key": "PRIMARY",
    }


@pytest.fixture(scope="module")
def default_options() -> dict[str, Any]:
    timeouts = {"connect_timeout": 10, "read_timeout": 10, "write_timeout": 10}
    conversions = {"init_command": INIT_COMMAND, "conv": CONVERSIONS}
    return {"pool_recycle": 3600, "connect_args": {"charset": "utf8mb4", **timeouts, **conversions}}


@pytest.fixture(scope="module")
def connect_timeout_args() -> tuple[str, ...]:
    # PyMySQL's connect_timeout covers only the TCP connect; without a read timeout the
    # wait for the server's greeting would never end.
    return ("connect_timeout", "read_timeout", "write_timeout")


@pytest.fixture
def password_url(server_url: URL) -> Iterator[URL]:
    """An account with a password on the shared server; dropped afterwards."""
    user, password = f"sl_{uuid.uuid4().hex[:8]}", "Sup3r-s3cret-pw"
    conn = raw_connect(server_url)
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
    try:
        yield server_url.set(username=user, password=password)._replace(database=None)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()


def code(error: sa_exc.DBAPIError) -> Any:
    """The error number PyMySQL raised behind ``error``."""
    orig: Any = error.orig
    return orig.args[0]


# -- pure: URLs and engine options ------------------------------------------------------


def test_init_command_sets_strict_mode_and_utc() -> None:
    assert SQL_MODE == (
        "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
        "NO_ENGINE_SUBSTITUTION"
    )
    assert f"sql_mode='{SQL_MODE}'" in INIT_COMMAND
    assert "time_zone='+00:00'" in INIT_COMMAND


def test_url_query_parameters_are_never_overridden() -> None:
    url = "mysql://u@h/db?charset=utf8&read_timeout=60&init_command=SET%20autocommit%3D0"
    args = options(url)["connect_args"]
    assert set(args) == {"connect_timeout", "write_timeout", "conv"}


@pytest.mark.parametrize("name", ["", "a-b", "x; DROP DATABASE mysql", "q`uote", "1abc", "a" * 65])
def test_database_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        BACKEND.provisioning.create_database(make_url("mysql://u@127.0.0.1:1/test"), name)
    with pytest.raises(ConfigurationError, match="plain identifier"):
        BACKEND.provisioning.drop_database(make_url("mysql://u@127.0.0.1:1/test"), name)


TABLE = Table(
    "t",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sku", String(20), unique=True),
    Column("qty", Integer),
)


def test_upsert_compiles_to_on_duplicate_key_update() -> None:
    dialect = create_engine("mysql+pymysql://").dialect
    row = [{"id": 1, "sku": "a", "qty": 2}]
    update = compiled(BACKEND.ops.upsert(TABLE, row, ["sku"], ["qty"]), dialect)
    assert update.endswith("ON DUPLICATE KEY UPDATE qty = VALUES(qty)")
    nothing = compiled(BACKEND.ops.upsert(TABLE, row, ["sku"], []), dialect)
    assert nothing.endswith("ON DUPLICATE KEY UPDATE sku = t.sku")
    assert "IGNORE" not in nothing
    pk = compiled(BACKEND.ops.upsert(TABLE, row, [], []), dialect)
    assert pk.endswith("ON DUPLICATE KEY UPDATE id = t.id")


# -- a real server ----------------------------------------------------------------------


def raw_connect(url: URL, **kwargs: Any) -> Any:
    params = url.translate_connect_args(username="user", database="database")
    return pymysql.connect(**params, autocommit=True, **kwargs)


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_access_denied_is_refused_for_good(server_url: URL, who: str) -> None:
    url = (
        server_url.set(password="storelayer-wrong-password")
        if who == "wrong password"
        else server_url.set(username="storelayer_nobody")
    )
    error = connect_error(BACKEND, url)
    assert code(error) == 1045
    assert_refused_for_good(error)


def test_queries_may_outlast_connect_timeout(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url, connect_timeout=1)
    try:
        with db.session() as s:
            assert s.execute(text("SELECT SLEEP(2)")).scalar() == 0
    finally:
        db.dispose()


def test_a_read_timeout_from_the_url_is_kept(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url.update_query_dict({"read_timeout": "1"}))
    try:
        with pytest.raises(sa_exc.OperationalError) as caught, db.session() as s:
            s.execute(text("SELECT SLEEP(3)"))
    finally:
        db.dispose()
    assert code(caught.value) == 2013
    assert_transient(caught.value)


SESSION = (
    "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@character_set_connection, "
    "@@SESSION.net_write_timeout"
)


def test_sessions_are_strict_utc_utf8mb4_with_keepalive_probes(scratch_url: URL) -> None:
    """A paused stream is kept for ten minutes (net_write_timeout): at the server's
    default 60 s, the conformance suite's async 100k-row stream was cut off on a loaded
    CI machine ("Lost connection to MySQL server during query")."""
    db = storelayer.connect(scratch_url)
    try:
        with db.engine.connect() as conn:
            row = conn.execute(text(SESSION)).one()
            sock = conn.connection.dbapi_connection._sock  # type: ignore[union-attr]
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    finally:
        db.dispose()

    async def in_async() -> tuple[Any, ...]:
        adb = storelayer.connect_async(scratch_url)
        try:
            async with adb.read_session() as s:
                return tuple((await s.execute(text(SESSION))).one())
        finally:
            await adb.dispose()

    expected = (SQL_MODE, "+00:00", "utf8mb4", STREAM_WRITE_TIMEOUT)
    assert tuple(row) == expected
    assert asyncio.run(in_async()) == expected
    assert idle == 10


INDIA = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_aware_datetimes_are_stored_as_their_utc_instant_in_both_apis(scratch_url: URL) -> None:
    """In async, aiomysql's escaping is replaced by PyMySQL's rules and ``conv`` encoders
    (``escape_like_pymysql``); its own ignored them."""
    written = dt.datetime(2024, 3, 10, 12, 30, 45, 250, tzinfo=INDIA)
    before = dt.datetime(2024, 3, 10, 7, 1, tzinfo=dt.timezone.utc)
    statements = [
        ("CREATE TABLE IF NOT EXISTS moments (at DATETIME(6))", {}),
        ("INSERT INTO moments VALUES (:at)", {"at": written}),
        ("SELECT COUNT(*) FROM moments WHERE at < :t", {"t": before}),
        ("SELECT at FROM moments", {}),
        ("DROP TABLE moments", {}),
    ]

    def scalar(result: Any) -> Any:
        return result.scalar() if result.returns_rows else None

    def run_sync() -> list[Any]:
        with storelayer.connect(scratch_url) as db, db.session() as s:
            return [scalar(s.execute(text(sql), params)) for sql, params in statements]

    async def run_async() -> list[Any]:
        async with storelayer.connect_async(scratch_url) as db, db.session() as s:
            return [scalar(await s.execute(text(sql), params)) for sql, params in statements]

    stored = dt.datetime(2024, 3, 10, 7, 0, 45, 250)  # naive, meaning UTC
    assert run_sync() == asyncio.run(run_async()) == [None, None, 1, stored, None]


@pytest.fixture
def counter(scratch_url: URL) -> URL:
    """An InnoDB table with two rows in the scratch database."""
    conn = raw_connect(scratch_url)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS counter")
        cur.execute("CREATE TABLE counter (id int PRIMARY KEY, n int) ENGINE=InnoDB")
        cur.execute("INSERT INTO counter VALUES (1, 0), (2, 0)")
    conn.close()
    return scratch_url


def update(conn: Any, row: int, errors: list[Any]) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE counter SET n = n + 1 WHERE id = %s", (row,))
    except pymysql.MySQLError as error:
        errors.append(error)
        conn.rollback()


def test_lock_wait_timeout_is_transient(counter: URL) -> None:
    holder, waiter = raw_connect(counter), raw_connect(counter)
    errors: list[Any] = []
    try:
        holder.begin()
        update(holder, 1, errors)
        waiter.query("SET SESSION innodb_lock_wait_timeout = 1")
        waiter.begin()
        update(waiter, 1, errors)
    finally:
        holder.close()
        waiter.close()
    assert [e.args[0] for e in errors] == [1205]
    assert_transient(errors[0])


def test_deadlock_is_transient(counter: URL) -> None:
    first, second = raw_connect(counter), raw_connect(counter)
    errors: list[Any] = []
    try:
        first.begin()
        second.begin()
        update(first, 1, errors)
        update(second, 2, errors)
        blocked = threading.Thread(target=update, args=(first, 2, errors))
        blocked.start()
        time.sleep(0.2)
        update(second, 1, errors)  # InnoDB picks a victim at once
        blocked.join(timeout=30)
    finally:
        first.close()
        second.close()
    assert [e.args[0] for e in errors] == [1213]
    assert_transient(errors[0])


def test_killed_connection_is_transient(counter: URL) -> None:
    engine = create_engine(BACKEND.normalize_url(counter))
    killer = raw_connect(counter)
    try:
        with engine.connect() as conn:
            thread_id = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
            killer.query(f"KILL CONNECTION {int(thread_id)}")
            with pytest.raises(sa_exc.DBAPIError) as caught:
                conn.execute(text("SELECT 1"))
    finally:
        killer.close()
        engine.dispose()
    assert code(caught.value) in (1927, 2006, 2013)
    assert_transient(caught.value)
    assert_transient(caught.value.orig or caught.value)


# -- constraint names, upserts, health, provisioning -----------------------------------


def test_strict_mode_rejects_instead_of_truncating(items: storelayer.Database) -> None:
    error = db_error(items, ITEMS.insert().values(id=1, sku="x" * 41, qty=1), sa_exc.DataError)
    assert code(error) == 1406


def test_a_check_violation_is_a_conflict(items: storelayer.Database) -> None:
    # PyMySQL raises CHECK violations (MySQL 3819, MariaDB 4025) as OperationalError;
    # the backend re-raises them as the IntegrityError they are.
    with pytest.raises(storelayer.Conflict) as caught, items.session() as s:
        s.execute(ITEMS.insert().values(id=1, sku="a", qty=-1))
    assert caught.value.constraint == "ck_items_qty"


def test_an_empty_update_still_raises_other_errors(items: storelayer.Database) -> None:
    # The no-op update is not INSERT IGNORE: a bad value is an error, not a warning.
    with pytest.raises(storelayer.InvalidValue), items.session() as s:
        too_long = [{"id": 1, "sku": "x" * 41, "qty": 1}]
        s.execute(items.backend.ops.upsert(ITEMS, too_long, ["sku"], []))


def test_on_duplicate_key_fires_on_any_unique_key(items: storelayer.Database) -> None:
    with items.session() as s:
        s.execute(ITEMS.insert().values(id=1, sku="a", name="first", qty=1))
    with items.session() as s:
        # Conflicts on "name", not on the "sku" the caller named: the row is updated.
        s.execute(
            items.backend.ops.upsert(
                ITEMS, [{"id": 2, "sku": "z", "name": "first", "qty": 5}], ["sku"], ["qty"]
            )
        )
    assert quantities(items) == {"a": 5}


def test_the_server_version_says_mariadb(scratch_db: storelayer.Database) -> None:
    version = str(scratch_db.health().server_version)
    with scratch_db.engine.connect() as conn:
        raw = str(conn.execute(text("SELECT VERSION()")).scalar())
    assert version.endswith("-MariaDB") == ("MariaDB" in raw)


def test_create_and_drop_database(server_url: URL) -> None:
    name = f"storelayer_scratch_{int(time.time() * 1000) % 10**9}"
    url = BACKEND.provisioning.create_database(server_url, name)
    assert url.database == name
    try:
        conn = raw_connect(server_url)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (name,),
            )
            assert cur.fetchone() == ("utf8mb4", "utf8mb4_unicode_ci")
        conn.close()
    finally:
        BACKEND.provisioning.drop_database(server_url, name)
        BACKEND.provisioning.drop_database(server_url, name)  # idempotent
    conn = raw_connect(server_url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
        )
        assert cur.fetchone() == (0,)
    conn.close()
