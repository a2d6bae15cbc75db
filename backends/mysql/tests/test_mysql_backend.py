"""The MySQL/MariaDB backend: pure option building, then error classification and round
trips against a real server (STORELAYER_TEST_MYSQL_URL, else the local default)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pymysql  # type: ignore[import-untyped]
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
from storelayer import ConfigurationError, ConnectionFailed, Settings
from storelayer.testing import Provisioner, Unavailable, in_ci, provision_or_skip
from storelayer_mysql import MySQLBackend
from storelayer_mysql.connection import CONVERSIONS, INIT_COMMAND, SQL_MODE

BACKEND = MySQLBackend()


def settings(url: str | URL = "mysql://u@h/db", **kwargs: Any) -> Settings:
    return Settings.from_env(url, environ={}, **kwargs)


def options(url: str = "mysql://u@h/db", **kwargs: Any) -> dict[str, Any]:
    return BACKEND.engine_options(make_url(url), settings(url, **kwargs))


def pool_settings(opts: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(opts[k] for k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"))


def compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect))


def code(error: sa_exc.DBAPIError) -> Any:
    """The error number PyMySQL raised behind ``error``."""
    orig: Any = error.orig
    return orig.args[0]


# -- pure: URLs and engine options ------------------------------------------------------


@pytest.mark.parametrize(
    "pasted",
    [
        "mysql://u:pw@db.example:3306/app",
        "mariadb://u:pw@db.example:3306/app",
        "mysql+pymysql://u:pw@db.example:3306/app",
        "mariadb+pymysql://u:pw@db.example:3306/app",
    ],
)
def test_every_pasted_form_normalizes_to_pymysql(pasted: str) -> None:
    url = BACKEND.normalize_url(make_url(pasted))
    assert url.drivername == "mysql+pymysql"
    parts = (url.username, url.password, url.host, url.port, url.database)
    assert parts == ("u", "pw", "db.example", 3306, "app")


def test_default_engine_options() -> None:
    opts = options()
    assert opts["poolclass"].__name__ == "QueuePool"
    assert pool_settings(opts) == (5, 10, 30, 3600)
    assert opts["pool_pre_ping"] is True
    assert opts["connect_args"] == {
        "charset": "utf8mb4",
        "connect_timeout": 10,
        "read_timeout": 10,
        "write_timeout": 10,
        "init_command": INIT_COMMAND,
        "conv": CONVERSIONS,
    }


def test_init_command_sets_strict_mode_and_utc() -> None:
    assert SQL_MODE == (
        "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
        "NO_ENGINE_SUBSTITUTION"
    )
    assert f"sql_mode='{SQL_MODE}'" in INIT_COMMAND
    assert "time_zone='+00:00'" in INIT_COMMAND


def test_user_pool_settings_win() -> None:
    opts = options(pool_size=20, max_overflow=0, pool_timeout=2.5, pool_recycle=300)
    assert pool_settings(opts) == (20, 0, 2.5, 300)


@pytest.mark.parametrize(("given", "sent"), [(0.2, 1), (1, 1), (2.5, 3), (10, 10), (0, 1)])
def test_connect_timeout_is_whole_seconds_of_at_least_one(given: float, sent: int) -> None:
    args = options(connect_timeout=given)["connect_args"]
    assert args["connect_timeout"] == args["read_timeout"] == args["write_timeout"] == sent


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


def test_the_plugin_is_found_through_its_entry_point() -> None:
    manager = storelayer.PluginManager(environ={})
    for scheme in ("mysql", "mariadb", "mysql+pymysql"):
        assert isinstance(manager.resolve(scheme), MySQLBackend)


# -- a real server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(storelayer_provisioner: Provisioner) -> URL:
    """The server to test against: skipped when unreachable, failed when CI is set."""
    try:
        return storelayer_provisioner.server_url(BACKEND)
    except Unavailable as error:
        if in_ci():
            pytest.fail(f"{error} (CI is set)")
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def scratch_url(storelayer_provisioner: Provisioner) -> URL:
    """A database of its own, dropped when the test session ends."""
    return provision_or_skip(storelayer_provisioner, BACKEND)


def raw_connect(url: URL, **kwargs: Any) -> Any:
    params = url.translate_connect_args(username="user", database="database")
    return pymysql.connect(**params, autocommit=True, **kwargs)


def connect_error(url: URL, **settings_: Any) -> sa_exc.OperationalError:
    """What connecting through an engine built from engine_options() raises."""
    engine = create_engine(
        BACKEND.normalize_url(url), **BACKEND.engine_options(url, settings(url, **settings_))
    )
    try:
        with pytest.raises(sa_exc.OperationalError) as caught:
            engine.connect()
        return caught.value
    finally:
        engine.dispose()


def assert_transient(error: BaseException) -> None:
    assert BACKEND.errors.is_transient(error), error
    assert not BACKEND.errors.is_connection_refused_for_good(error), error


def assert_refused_for_good(error: BaseException) -> None:
    assert BACKEND.errors.is_connection_refused_for_good(error), error
    assert not BACKEND.errors.is_transient(error), error


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
            with conn, suppress(OSError):
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


def test_closed_port_is_transient(server_url: URL) -> None:
    error = connect_error(server_url.set(host="127.0.0.1", port=free_port()))
    assert code(error) == 2003
    assert_transient(error)


def test_silent_server_fails_within_connect_timeout_and_is_transient(server_url: URL) -> None:
    # PyMySQL's connect_timeout covers only the TCP connect; without a read timeout the
    # wait for the server's greeting would never end.
    with listener() as port:
        started = time.monotonic()
        error = connect_error(server_url.set(host="127.0.0.1", port=port), connect_timeout=1)
        elapsed = time.monotonic() - started
    assert elapsed < 4
    assert code(error) == 2013
    assert_transient(error)


def test_server_hanging_up_during_handshake_is_transient(server_url: URL) -> None:
    with listener(lambda conn: None) as port:
        error = connect_error(server_url.set(host="127.0.0.1", port=port))
    assert code(error) == 2013
    assert_transient(error)


def test_unknown_database_is_refused_for_good(server_url: URL) -> None:
    error = connect_error(server_url.set(database="storelayer_missing_db"))
    assert code(error) == 1049
    assert_refused_for_good(error)
    assert_refused_for_good(error.orig or error)


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_access_denied_is_refused_for_good(server_url: URL, who: str) -> None:
    url = (
        server_url.set(password="storelayer-wrong-password")
        if who == "wrong password"
        else server_url.set(username="storelayer_nobody")
    )
    error = connect_error(url)
    assert code(error) == 1045
    assert_refused_for_good(error)


def test_connect_failures_through_connect_say_whether_to_retry(server_url: URL) -> None:
    missing = storelayer.connect(server_url.set(database="storelayer_missing_db"))
    refused = storelayer.connect(server_url.set(host="127.0.0.1", port=free_port()))
    try:
        for db, transient in ((missing, False), (refused, True)):
            with pytest.raises(ConnectionFailed) as caught:
                db.engine.connect()
            assert caught.value.transient is transient
            assert db.is_transient(caught.value) is transient
    finally:
        missing.dispose()
        refused.dispose()


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


def test_sessions_are_strict_utc_utf8mb4_with_keepalive_probes(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url)
    try:
        with db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@character_set_connection")
            ).one()
            sock = conn.connection.dbapi_connection._sock  # type: ignore[union-attr]
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    finally:
        db.dispose()
    assert tuple(row) == (SQL_MODE, "+00:00", "utf8mb4")
    assert idle == 10


def test_aware_datetimes_are_stored_as_their_utc_instant(scratch_url: URL) -> None:
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    written = dt.datetime(2024, 3, 10, 12, 30, 45, 250, tzinfo=india)
    db = storelayer.connect(scratch_url)
    try:
        with db.session() as s:
            s.execute(text("CREATE TABLE IF NOT EXISTS moments (at DATETIME(6))"))
            s.execute(text("INSERT INTO moments VALUES (:at)"), {"at": written})
            later = s.execute(
                text("SELECT COUNT(*) FROM moments WHERE at < :t"),
                {"t": dt.datetime(2024, 3, 10, 7, 1, tzinfo=dt.timezone.utc)},
            )
            assert later.scalar() == 1
            stored = s.execute(text("SELECT at FROM moments")).scalar()
            s.execute(text("DROP TABLE moments"))
    finally:
        db.dispose()
    assert stored == dt.datetime(2024, 3, 10, 7, 0, 45, 250)  # naive, meaning UTC


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
def db(scratch_url: URL) -> Iterator[storelayer.Database]:
    database = storelayer.connect(scratch_url)
    with database.engine.begin() as conn:
        METADATA.create_all(conn)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def items(db: storelayer.Database) -> storelayer.Database:
    with db.session() as s:
        s.execute(CHILDREN.delete())
        s.execute(ITEMS.delete())
    return db


def db_error(
    db: storelayer.Database, statement: Any, kind: type[sa_exc.DBAPIError] = sa_exc.IntegrityError
) -> Any:
    with db.engine.connect() as conn, pytest.raises(kind) as caught:
        conn.execute(statement)
    return caught.value


def test_constraint_names_come_from_the_server(items: storelayer.Database) -> None:
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
    names = {kind: BACKEND.errors.constraint_name(error) for kind, error in found.items()}
    assert names == {
        "duplicate": "uq_items_sku",
        "primary": "PRIMARY",
        "orphan": "fk_children_item",
        "parent": "fk_children_item",
        "check": "ck_items_qty",
    }
    assert not any(BACKEND.errors.is_transient(error) for error in found.values())


def test_strict_mode_rejects_instead_of_truncating(items: storelayer.Database) -> None:
    error = db_error(items, ITEMS.insert().values(id=1, sku="x" * 41, qty=1), sa_exc.DataError)
    assert code(error) == 1406


def test_a_conflict_in_a_session_names_the_constraint(items: storelayer.Database) -> None:
    with pytest.raises(storelayer.Conflict) as caught, items.session() as s:
        rows = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": "a", "qty": 1}]
        s.execute(ITEMS.insert(), rows)
    assert caught.value.constraint == "uq_items_sku"


def test_a_check_violation_is_a_conflict(items: storelayer.Database) -> None:
    # PyMySQL raises CHECK violations (MySQL 3819, MariaDB 4025) as OperationalError;
    # the backend re-raises them as the IntegrityError they are.
    with pytest.raises(storelayer.Conflict) as caught, items.session() as s:
        s.execute(ITEMS.insert().values(id=1, sku="a", qty=-1))
    assert caught.value.constraint == "ck_items_qty"


def quantities(db: storelayer.Database) -> dict[str, int]:
    with db.read_session() as s:
        return {row.sku: row.qty for row in s.execute(select(ITEMS.c.sku, ITEMS.c.qty))}


def test_upsert_round_trip(items: storelayer.Database) -> None:
    rows = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": "b", "qty": 2}]
    with items.session() as s:
        s.execute(items.backend.ops.upsert(ITEMS, rows, ["sku"], ["qty"]))
    with items.session() as s:
        changed = [{"id": 1, "sku": "a", "qty": 10}, {"id": 4, "sku": "c", "qty": 3}]
        s.execute(items.backend.ops.upsert(ITEMS, changed, ["sku"], ["qty"]))
    assert quantities(items) == {"a": 10, "b": 2, "c": 3}
    with items.session() as s:
        s.execute(items.backend.ops.upsert(ITEMS, [{"id": 2, "sku": "b", "qty": 99}], ["sku"], []))
    assert quantities(items) == {"a": 10, "b": 2, "c": 3}


def test_an_empty_update_still_raises_other_errors(items: storelayer.Database) -> None:
    # The no-op update is not INSERT IGNORE: a bad value is an error, not a warning.
    with pytest.raises(sa_exc.DataError), items.session() as s:
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


def test_health_reports_the_server_version(db: storelayer.Database) -> None:
    report = db.health()
    assert report.healthy, report.error
    assert report.backend == "mysql"
    assert report.server_version and report.server_version[0].isdigit()
    with db.engine.connect() as conn:
        raw = str(conn.execute(text("SELECT VERSION()")).scalar())
    assert raw.startswith(report.server_version.removesuffix("-MariaDB"))
    assert report.server_version.endswith("-MariaDB") == ("MariaDB" in raw)


def test_a_server_that_replicates_nothing_has_no_replica_lag(db: storelayer.Database) -> None:
    with db.engine.connect() as conn:
        assert BACKEND.replication.lag(conn) is None


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
