"""MariaDB misbehaving on purpose: restarts under load, KILLed connections, a stopped
(hung) server, a read-only server given as primary, and pool_recycle derived from the
server's wait_timeout. Everything runs against one throwaway server of this module
(tests/resilience/_mariadb.py); the machine's shared server is never touched."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from _checks import assert_nothing_lost_or_doubled, record, wait_until_healthy
from _mariadb import MariaDBServer, find_binaries
from _workload import Base, KeyedRow, run_under_restarts
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

import storelayer
from storelayer import ReadOnlyDatabase
from storelayer.testing import in_ci

#: The module's server closes connections idle this long (seconds).
WAIT_TIMEOUT = 40


@pytest.fixture(scope="module")
def server() -> Iterator[MariaDBServer]:
    """One throwaway MariaDB server for the module."""
    if find_binaries() is None:
        if in_ci():
            pytest.fail("MariaDB server binaries not found (CI is set)")
        pytest.skip("MariaDB server binaries (mariadbd, mariadb-install-db) not found")
    with MariaDBServer(options=(f"--wait-timeout={WAIT_TIMEOUT}", "--max-connections=60")) as s:
        yield s


def admin(server: MariaDBServer, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` as root; the rows of the last one."""
    engine = create_engine(server.url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    rows: list[tuple[object, ...]] = []
    try:
        with engine.connect() as conn:
            for sql in statements:
                result = conn.exec_driver_sql(sql)
                rows = [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()
    return rows


@pytest.fixture(scope="module")
def url(server: MariaDBServer) -> URL:
    """A database of its own on the throwaway server, with the workload's tables."""
    backend = storelayer.get_plugin_manager().backends()["mysql"]
    created: URL = backend.provisioning.create_database(server.url, "resilience")
    with storelayer.connect(created) as db:
        Base.metadata.create_all(db.engine)
    return created


def test_restart_under_load_loses_and_doubles_nothing(server: MariaDBServer, url: URL) -> None:
    with storelayer.connect(url, pool_size=8, max_overflow=0, connect_timeout=2) as db:
        result = run_under_restarts(db, server.restart)
        figures = assert_nothing_lost_or_doubled(db, result)
    record("mariadb restart under load", figures)
    assert figures["rows"] > 0
    assert figures["retries"] > 0


def kill_ours(server: MariaDBServer) -> int:
    ids = admin(
        server,
        "SELECT ID FROM information_schema.PROCESSLIST "
        "WHERE DB = 'resilience' AND ID <> CONNECTION_ID()",
    )
    if ids:
        admin(server, *(f"KILL {int(str(row[0]))}" for row in ids))
    return len(ids)


def test_killed_connections_are_replaced_without_the_application_noticing(
    server: MariaDBServer, url: URL
) -> None:
    with storelayer.connect(url, pool_size=4, ping_after=0) as db:
        with db.session() as s:
            assert s.execute(text("SELECT 1")).scalar() == 1
        assert kill_ours(server) >= 1
        with db.session() as s:  # the pre-ping finds the dead connection and replaces it
            assert s.execute(text("SELECT 2")).scalar() == 2
    with storelayer.connect(url, pool_size=4) as db:  # the default, cheaper ping policy
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")).scalar())
        assert kill_ours(server) >= 1
        assert db.run_in_transaction(lambda s: s.execute(text("SELECT 3")).scalar()) == 3


def test_a_hung_server_does_not_hang_the_health_check_or_touch_the_pool(
    server: MariaDBServer, url: URL
) -> None:
    with storelayer.connect(url, pool_size=2, health_timeout=1.0) as db:
        assert wait_until_healthy(db).status == "healthy"
        checkouts = db.metrics()["engines"]["primary"]["pool"]["checkouts"]
        server.pause()
        try:
            timings = []
            for _ in range(2):
                started = time.monotonic()
                report = db.health()
                timings.append(round(time.monotonic() - started, 2))
                assert report.status == "down"
                assert "no answer" in (report.error or "") or "timeout" in (report.error or "")
        finally:
            server.resume()
        after = db.metrics()["engines"]["primary"]["pool"]
        assert after["checkouts"] == checkouts and after["checked_out"] == 0
        assert wait_until_healthy(db).status == "healthy"
    record("mariadb hung server health", {"health_seconds": timings})
    assert max(timings) < 2.0


def test_a_read_only_server_given_as_primary_is_named_and_nothing_changes(
    server: MariaDBServer, url: URL
) -> None:
    admin(
        server,
        "CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app-secret'",
        "GRANT ALL ON resilience.* TO 'app'@'127.0.0.1'",
        "SET GLOBAL read_only = 1",
    )
    app_url = url.set(username="app", password="app-secret")
    try:
        with storelayer.connect(app_url) as db:
            with pytest.raises(ReadOnlyDatabase) as caught, db.session() as s:
                s.add(KeyedRow(worker=77, seq=1))
            with db.read_session() as s:
                assert s.repository(KeyedRow).count(worker=77) == 0
    finally:
        admin(server, "SET GLOBAL read_only = 0")
    message = str(caught.value)
    assert "DATABASE_URL" in message and "app-secret" not in message


def test_pool_recycle_follows_the_server_wait_timeout(url: URL) -> None:
    with storelayer.connect(url) as db:
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")))
        pool_report = db.health().engines[0].pool
    assert pool_report["server_idle_timeout"] == WAIT_TIMEOUT
    assert pool_report["recycle"] == WAIT_TIMEOUT - 4  # a 10 % margin
    assert "wait" in pool_report["recycle_source"] or "idle" in pool_report["recycle_source"]
    with storelayer.connect(url, pool_recycle=600) as db:  # set by the user: kept
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")))
        assert db.health().engines[0].pool["recycle"] == 600


def test_a_lock_wait_timeout_rolls_back_the_whole_unit_before_the_retry(
    server: MariaDBServer, url: URL
) -> None:
    """MariaDB rolls back only the statement that timed out; storelayer rolls back the
    unit, so the row the first attempt wrote is not committed twice."""
    with storelayer.connect(url) as db:
        locked = db.run_in_transaction(lambda s: s.repository(KeyedRow).create(worker=55, seq=0)).id
        holder = db.engine.connect()  # holds the row lock (by primary key: no gap locks)
        holder.execute(
            text("SELECT id FROM resilience_keyed WHERE id = :id FOR UPDATE"), {"id": locked}
        )
        attempts = []

        def unit(s: storelayer.Session) -> None:
            attempts.append(1)
            s.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            s.add(KeyedRow(worker=56, seq=len(attempts)))
            s.flush()
            if len(attempts) == 2:
                holder.rollback()
            s.execute(
                text("UPDATE resilience_keyed SET seq = seq + 1 WHERE id = :id"), {"id": locked}
            )

        db.run_in_transaction(unit, retries=5)
        holder.close()
        with db.read_session() as s:
            assert s.repository(KeyedRow).count(worker=56) == 1
    assert len(attempts) == 2
