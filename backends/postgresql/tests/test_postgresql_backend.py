"""The PostgreSQL backend: pure option building, then error classification and round
trips against a real server (STORELAYER_TEST_POSTGRESQL_URL, else the local default)."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg2  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

import storelayer
from storelayer import ConfigurationError, ConnectionFailed, Settings
from storelayer.testing import Provisioner, Unavailable, in_ci, provision_or_skip
from storelayer_postgresql import PostgreSQLBackend

BACKEND = PostgreSQLBackend()


def settings(url: str | URL = "postgresql://u@h/db", **kwargs: Any) -> Settings:
    return Settings.from_env(url, environ={}, **kwargs)


def options(url: str = "postgresql://u@h/db", **kwargs: Any) -> dict[str, Any]:
    return BACKEND.engine_options(make_url(url), settings(url, **kwargs))


def pool_settings(opts: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(opts[k] for k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"))


def compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect))


def sqlstate(error: sa_exc.DBAPIError) -> str | None:
    """The SQLSTATE psycopg2 attached to the error behind ``error``."""
    code: str | None = getattr(error.orig, "pgcode", None)
    return code


# -- pure: URLs and engine options ------------------------------------------------------


@pytest.mark.parametrize(
    "pasted",
    [
        "postgres://u:pw@db.example:5432/app",
        "postgresql://u:pw@db.example:5432/app",
        "postgresql+psycopg2://u:pw@db.example:5432/app",
    ],
)
def test_every_pasted_form_normalizes_to_psycopg2(pasted: str) -> None:
    url = BACKEND.normalize_url(make_url(pasted))
    assert url.drivername == "postgresql+psycopg2"
    parts = (url.username, url.password, url.host, url.port, url.database)
    assert parts == ("u", "pw", "db.example", 5432, "app")


def test_an_explicit_other_driver_is_kept() -> None:
    url = BACKEND.normalize_url(make_url("postgres+psycopg://u@h/db"))
    assert url.drivername == "postgresql+psycopg"


def test_default_engine_options() -> None:
    opts = options()
    assert opts["poolclass"].__name__ == "QueuePool"
    assert pool_settings(opts) == (5, 10, 30, 1800)
    assert opts["pool_pre_ping"] is True
    assert opts["connect_args"] == {
        "connect_timeout": 10,
        "application_name": "storelayer",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }


def test_user_pool_settings_win() -> None:
    opts = options(pool_size=20, max_overflow=0, pool_timeout=2.5, pool_recycle=-1)
    assert pool_settings(opts) == (20, 0, 2.5, -1)


def test_pool_settings_from_the_environment_win() -> None:
    env = {"STORELAYER_POOL_SIZE": "7", "STORELAYER_POOL_RECYCLE": "60"}
    url = make_url("postgresql://u@h/db")
    opts = BACKEND.engine_options(url, Settings.from_env(url, environ=env))
    assert (opts["pool_size"], opts["pool_recycle"], opts["max_overflow"]) == (7, 60, 10)


@pytest.mark.parametrize(("given", "sent"), [(0.2, 1), (1, 1), (2.5, 3), (10, 10), (0, 1)])
def test_connect_timeout_is_whole_seconds_of_at_least_one(given: float, sent: int) -> None:
    assert options(connect_timeout=given)["connect_args"]["connect_timeout"] == sent


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


def test_the_plugin_is_found_through_its_entry_point() -> None:
    manager = storelayer.PluginManager(environ={})
    for scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        assert isinstance(manager.resolve(scheme), PostgreSQLBackend)


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


def connect_kwargs(url: URL) -> dict[str, Any]:
    kwargs = url.translate_connect_args(username="user", database="dbname")
    return {**kwargs, **url.query}


def raw_connect(url: URL, *, autocommit: bool = False) -> Any:
    conn = psycopg2.connect(**connect_kwargs(url))
    conn.autocommit = autocommit
    return conn


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


def test_closed_port_is_transient(server_url: URL) -> None:
    assert_transient(connect_error(server_url.set(host="127.0.0.1", port=free_port())))


def test_silent_server_times_out_within_connect_timeout_and_is_transient(
    server_url: URL,
) -> None:
    with listener() as port:
        started = time.monotonic()
        error = connect_error(server_url.set(host="127.0.0.1", port=port), connect_timeout=1)
        elapsed = time.monotonic() - started
    assert "timeout expired" in str(error)
    assert elapsed < 6  # libpq waits at least 2 s
    assert_transient(error)


def test_server_hanging_up_during_startup_is_transient(server_url: URL) -> None:
    with listener(lambda conn: None) as port:
        error = connect_error(
            server_url.set(host="127.0.0.1", port=port).update_query_dict({"sslmode": "disable"})
        )
    assert "closed the connection" in str(error)
    assert_transient(error)


def test_unknown_database_is_refused_for_good(server_url: URL) -> None:
    error = connect_error(server_url.set(database=f"missing_{uuid.uuid4().hex[:8]}"))
    assert "does not exist" in str(error)
    assert_refused_for_good(error)
    assert_refused_for_good(error.orig or error)


def test_unknown_role_is_refused_for_good(server_url: URL) -> None:
    error = connect_error(server_url.set(username=f"nobody_{uuid.uuid4().hex[:8]}"))
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
        error = connect_error(url.set(port=port))
    assert message in str(error)
    assert_refused_for_good(error)


def test_connect_failures_through_connect_say_whether_to_retry(server_url: URL) -> None:
    missing = storelayer.connect(server_url.set(database=f"missing_{uuid.uuid4().hex[:8]}"))
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
    assert sqlstate(caught.value) in (None, "57P01")
    assert caught.value.connection_invalidated
    assert_transient(caught.value)
    assert_transient(caught.value.orig or caught.value)


def test_statement_timeout_cancels_a_long_query_and_is_not_transient(scratch_url: URL) -> None:
    db = storelayer.connect(scratch_url, statement_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(sa_exc.OperationalError) as caught, db.session() as s:
            s.execute(text("SELECT pg_sleep(3)"))
        assert time.monotonic() - started < 2
    finally:
        db.dispose()
    assert sqlstate(caught.value) == "57014"
    assert not BACKEND.errors.is_transient(caught.value)


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


# -- constraint names, upserts, health, provisioning -----------------------------------

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("sku", String(40), nullable=False, unique=True),
    Column("qty", Integer, nullable=False),
)
CHILDREN = Table(
    "children",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, nullable=True),
)


@pytest.fixture(scope="module")
def db(scratch_url: URL) -> Iterator[storelayer.Database]:
    database = storelayer.connect(scratch_url)
    with database.engine.begin() as conn:
        METADATA.create_all(conn)
        conn.exec_driver_sql(
            "ALTER TABLE children ADD CONSTRAINT fk_children_item "
            "FOREIGN KEY (item_id) REFERENCES items (id)"
        )
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


def integrity_error(db: storelayer.Database, statement: Any) -> sa_exc.IntegrityError:
    with db.engine.connect() as conn, pytest.raises(sa_exc.IntegrityError) as caught:
        conn.execute(statement)
    return caught.value


def test_constraint_names_come_from_the_server(items: storelayer.Database) -> None:
    with items.session() as s:
        s.execute(ITEMS.insert().values(id=1, sku="a", qty=1))
    duplicate = integrity_error(items, ITEMS.insert().values(id=2, sku="a", qty=1))
    assert BACKEND.errors.constraint_name(duplicate) == "items_sku_key"
    assert not BACKEND.errors.is_transient(duplicate)
    orphan = integrity_error(items, CHILDREN.insert().values(id=1, item_id=99))
    assert BACKEND.errors.constraint_name(orphan) == "fk_children_item"


def test_a_conflict_in_a_session_names_the_constraint(items: storelayer.Database) -> None:
    with pytest.raises(storelayer.Conflict) as caught, items.session() as s:
        rows = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": "a", "qty": 1}]
        s.execute(ITEMS.insert(), rows)
    assert caught.value.constraint == "items_sku_key"


def quantities(db: storelayer.Database) -> dict[str, int]:
    with db.read_session() as s:
        return {row.sku: row.qty for row in s.execute(select(ITEMS.c.sku, ITEMS.c.qty))}


def test_upsert_round_trip(items: storelayer.Database) -> None:
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


def test_health_reports_the_server_version(db: storelayer.Database) -> None:
    report = db.health()
    assert report.healthy, report.error
    assert report.backend == "postgresql"
    assert report.server_version and report.server_version[0].isdigit()
    assert " " not in report.server_version


def test_a_primary_has_no_replica_lag(db: storelayer.Database) -> None:
    with db.engine.connect() as conn:
        assert BACKEND.replication.lag(conn) is None


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
