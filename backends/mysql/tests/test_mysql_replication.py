"""Read routing on real MariaDB replication: a private primary (binlog, GTID strict
mode) with two replicas (``MASTER_USE_GTID = slave_pos``), delay injected with
``MASTER_DELAY``. The shared suite plus MariaDB's own checks."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import text

from storelayer import Backend, get_plugin_manager
from storelayer.testing.replicas import ReplicaSet
from storelayer.testing.replication_suite import *  # noqa: F403
from storelayer.testing.replication_suite import add, routed, wait_until
from storelayer_mysql import replication
from storelayer_mysql.testing import MariaDBReplicaSet

BACKEND = get_plugin_manager().backends()["mysql"]


@pytest.fixture(scope="module")
def replication_backend() -> Backend:
    return BACKEND


@pytest.fixture(scope="module")
def server_port_sql() -> str:
    return "SELECT @@port"


def server_ids(cluster: ReplicaSet) -> tuple[int, list[int]]:
    assert isinstance(cluster, MariaDBReplicaSet)
    return cluster.primary.server_id, [r.server_id for r in cluster.replicas]


def test_replica_reads_carry_a_replica_server_id_and_writes_the_primary(
    replication_cluster: ReplicaSet,
) -> None:
    primary_id, replica_ids = server_ids(replication_cluster)
    with routed(replication_cluster) as db:
        seen = set()
        for _ in range(4):
            with db.read_session() as s:
                seen.add(s.execute(text("SELECT @@server_id")).scalar())
        assert seen == set(replica_ids)
        with db.session() as s:
            assert s.execute(text("SELECT @@server_id")).scalar() == primary_id


def test_stopped_replication_is_unhealthy_not_zero_lag(replication_cluster: ReplicaSet) -> None:
    assert isinstance(replication_cluster, MariaDBReplicaSet)
    replica = replication_cluster.replicas[1]
    with routed(replication_cluster) as db:
        with db.read_session() as s:
            s.execute(text("SELECT 1"))
        replica.execute("STOP SLAVE")
        try:

            def stopped() -> bool:
                status = {r.name: r for r in db.routing_stats().replicas}
                return status["replica:1"].lag is None and not status["replica:1"].eligible

            wait_until(stopped, 10, "replica:1 to be seen as not replicating")
            with db.engines()["replica:1"].connect() as connection:
                assert BACKEND.replication.lag(connection) is None
            seen: Counter[int] = Counter()
            for _ in range(20):
                with db.read_session() as s:
                    seen[s.execute(text("SELECT @@server_id")).scalar()] += 1
            assert replica.server_id not in seen
            problems = db.health().problems  # health judges by the routing rule
            assert "replica:1 replication lag unknown (replication stopped?)" in problems
        finally:
            replica.execute("START SLAVE")
            replication_cluster.wait_replayed()


def test_gtid_positions_and_replay_check(replication_cluster: ReplicaSet) -> None:
    with routed(replication_cluster) as db:
        add(db, "position")
        token = db.last_write_token()
        assert token is not None
        gtid = token.split(".", 2)[2]
        assert replication.checked_position(gtid, mariadb=True) == gtid
        replication_cluster.wait_replayed()
        with db.engines()["replica:0"].connect() as connection:
            assert BACKEND.replication.has_replayed(connection, gtid) is True
            domain, server, seq = gtid.split(",")[0].split("-")
            ahead = f"{domain}-{server}-{int(seq) + 1000}"
            start = time.monotonic()
            assert BACKEND.replication.has_replayed(connection, ahead) is False
            assert time.monotonic() - start < 1.0  # MASTER_GTID_WAIT(pos, 0) never waits
            with pytest.raises(ValueError, match="not a MariaDB GTID list"):
                BACKEND.replication.has_replayed(connection, "0-1-1', 9); SELECT SLEEP(5); --")


@pytest.mark.parametrize(
    ("position", "mariadb", "valid"),
    [
        ("0-1-42", True, True),
        ("0-1-42,1-2-7", True, True),
        ("0-1", True, False),
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", False, True),
        (
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,3E11FA47-71CA-11E1-9E33-C80AA9429563:1",
            False,
            True,
        ),
        ("0-1-42", False, False),
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", True, False),
    ],
)
def test_position_formats(position: str, mariadb: bool, valid: bool) -> None:
    if valid:
        assert replication.checked_position(position, mariadb) == position
    else:
        with pytest.raises(ValueError):
            replication.checked_position(position, mariadb)
