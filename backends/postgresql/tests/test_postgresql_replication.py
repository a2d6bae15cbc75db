"""Read routing on real PostgreSQL streaming replication: a private primary with two
standbys cloned by ``pg_basebackup -R``, delay injected with
``recovery_min_apply_delay``. The shared suite plus PostgreSQL's own checks."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from storelayer import Backend, get_plugin_manager
from storelayer.testing.replicas import ReplicaSet
from storelayer.testing.replication_suite import *  # noqa: F403
from storelayer.testing.replication_suite import add, routed
from storelayer_postgresql import replication

BACKEND = get_plugin_manager().backends()["postgresql"]


@pytest.fixture(scope="module")
def replication_backend() -> Backend:
    return BACKEND


@pytest.fixture(scope="module")
def server_port_sql() -> str:
    return "SELECT inet_server_port()"


def test_replica_reads_run_in_recovery_and_writes_do_not(
    replication_cluster: ReplicaSet,
) -> None:
    with routed(replication_cluster) as db:
        for _ in range(4):
            with db.read_session() as s:
                assert s.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
        with db.session() as s:
            assert s.execute(text("SELECT pg_is_in_recovery()")).scalar() is False


def test_replay_timestamp_lag_misreports_an_idle_standby_but_replica_lag_does_not(
    replication_cluster: ReplicaSet,
) -> None:
    with routed(replication_cluster) as db:
        add(db, "last write before idling")
        replication_cluster.wait_replayed()
        time.sleep(2.0)
        replica = db.engines()["replica:0"]
        with replica.connect() as connection:
            naive = connection.execute(
                text("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())")
            ).scalar()
            assert float(naive) > 1.5  # the trap: an idle, caught-up standby "lags"
            assert BACKEND.replication.lag(connection) == 0.0


def test_write_position_and_replay_check(replication_cluster: ReplicaSet) -> None:
    with routed(replication_cluster) as db:
        replication_cluster.set_delay(0, 30)
        try:
            add(db, "position")
            position = db.last_write_token()
            assert position is not None
            lsn = position.split(".", 2)[2].replace("%2F", "/")
            with db.engines()["primary"].connect() as connection:
                current = BACKEND.replication.write_position(connection)
                assert current is not None
                assert BACKEND.replication.has_replayed(connection, lsn) is False  # a primary
            replicas = db.engines()
            with replicas["replica:0"].connect() as connection:
                assert BACKEND.replication.has_replayed(connection, lsn) is False  # 30 s behind
            with replicas["replica:1"].connect() as connection:
                deadline = time.monotonic() + 10
                while not BACKEND.replication.has_replayed(connection, lsn):
                    assert time.monotonic() < deadline
                    connection.rollback()
                    time.sleep(0.01)
                with pytest.raises(ValueError, match="not a PostgreSQL WAL position"):
                    BACKEND.replication.has_replayed(connection, "0/1'; SELECT 1; --")
        finally:
            replication_cluster.set_delay(0, 0)
            replication_cluster.wait_replayed()


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0.0), (-0.2, 0.0), ("2.5", 2.5)])
def test_lag_seconds_are_never_negative(value: object, expected: float | None) -> None:
    assert replication.seconds(value) == expected


def test_replica_pools_are_smaller() -> None:
    from sqlalchemy.engine import make_url

    from storelayer import Settings

    url = make_url("postgresql+psycopg2://u@h/db")
    options = BACKEND.replication.pool_options(url, Settings.from_env(url, environ={}))
    assert options["pool_size"] < 5
