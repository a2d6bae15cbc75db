"""PostgreSQL misbehaving on purpose: restarts under load, terminated connections, a
stopped (hung) server, a read-only database and an undersized server. Everything runs
against one throwaway server of this module; the machine's shared server is never
touched."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _checks import check_a_hung_server, check_restart_under_load, workload_database
from _workload import Base, KeyedRow
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

import storelayer
from storelayer import ReadOnlyDatabase
from storelayer.testing import skip_or_fail
from storelayer_postgresql.testing import PostgreSQLServer, make_workdir


@pytest.fixture(scope="module")
def server() -> Iterator[PostgreSQLServer]:
    """One throwaway PostgreSQL server for the module (max_connections 40)."""
    try:
        settings = {"max_connections": "40", "fsync": "off"}
        instance = PostgreSQLServer(make_workdir(), settings=settings)
    except FileNotFoundError as error:
        skip_or_fail(str(error))
    with instance:
        yield instance


def admin(server_url: URL, sql: str) -> None:
    """Run ``sql`` as the superuser, outside any storelayer engine."""
    engine = create_engine(server_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def url(server: PostgreSQLServer) -> URL:
    return workload_database("postgresql", server.url)


def test_restart_under_load_loses_and_doubles_nothing(server: PostgreSQLServer, url: URL) -> None:
    check_restart_under_load(url, server.restart, "postgresql")


#: Ends every connection to the module's database but the one asking.
TERMINATE_OURS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = 'resilience' AND pid <> pg_backend_pid()"
)


def test_terminated_connections_are_replaced_without_the_application_noticing(
    server: PostgreSQLServer, url: URL
) -> None:
    with storelayer.connect(url, pool_size=4, ping_after=0) as db:
        with db.session() as s:
            assert s.execute(text("SELECT 1")).scalar() == 1
        admin(server.url, TERMINATE_OURS)
        with db.session() as s:  # the pre-ping finds the dead connection and replaces it
            assert s.execute(text("SELECT 2")).scalar() == 2
    with storelayer.connect(url, pool_size=4) as db:  # the default, cheaper ping policy
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")).scalar())
        admin(server.url, TERMINATE_OURS)
        assert db.run_in_transaction(lambda s: s.execute(text("SELECT 3")).scalar()) == 3


def postmaster_pid(server: PostgreSQLServer) -> int:
    return int((Path(server.datadir) / "postmaster.pid").read_text().split()[0])


def test_a_hung_server_does_not_hang_the_health_check_or_touch_the_pool(
    server: PostgreSQLServer, url: URL
) -> None:
    check_a_hung_server(url, postmaster_pid(server), "postgresql")


def test_a_read_only_database_given_as_primary_is_named_and_nothing_changes(
    server: PostgreSQLServer, url: URL
) -> None:
    backend = storelayer.get_plugin_manager().backends()["postgresql"]
    read_only = backend.provisioning.create_database(server.url, "resilience_ro")
    with storelayer.connect(read_only) as db:
        Base.metadata.create_all(db.engine)
    admin(server.url, "ALTER DATABASE resilience_ro SET default_transaction_read_only = on")
    with storelayer.connect(read_only) as db:
        with pytest.raises(ReadOnlyDatabase) as caught, db.session() as s:
            s.add(KeyedRow(worker=1, seq=1))
        with db.read_session() as s:
            assert s.repository(KeyedRow).count() == 0
    assert "DATABASE_URL" in str(caught.value) and "resilience_ro" in str(caught.value)


def test_a_pool_larger_than_the_server_allows_is_reported(
    url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="storelayer.pool"),
        storelayer.connect(url, pool_size=5, max_overflow=5, processes=5) as db,
    ):
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")))  # first connect
        report = db.health()
    assert "max_connections=40" in caplog.text and "processes=5" in caplog.text
    assert report.status == "degraded"
    assert report.engines[0].pool["server_max_connections"] == 40


def test_statements_in_flight_during_a_restart_are_retried_as_whole_units(
    server: PostgreSQLServer, url: URL
) -> None:
    """A unit that wrote a row, then lost its connection, is run again from the start:
    the row is written once, not twice."""
    attempts = []

    def unit(s: storelayer.Session) -> None:
        attempts.append(1)
        s.add(KeyedRow(worker=99, seq=len(attempts)))
        s.flush()
        if len(attempts) == 1:
            restarting.start()
            s.execute(text("SELECT pg_sleep(5)"))

    restarting = threading.Thread(target=server.restart)
    with storelayer.connect(url, connect_timeout=2) as db:
        db.run_in_transaction(unit, retries=30, max_seconds=30)
        restarting.join()
        with db.read_session() as s:
            assert s.repository(KeyedRow).count(worker=99) == 1
    assert len(attempts) >= 2
