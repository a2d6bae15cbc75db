"""A 3-node MariaDB Galera cluster (storelayer.testing.clusters): host lists, hot-row
conflicts, a node killed under load, concurrent migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storelayer.testing import GaleraCluster
from storelayer.testing.clusters_galera import autocommit

pytestmark = pytest.mark.cluster


def test_the_fixture_runs_three_synced_nodes(galera_cluster: GaleraCluster) -> None:
    assert all(galera_cluster.synced(i) for i in range(3))
    galera_cluster.create_database("h14_smoke")
    try:
        with autocommit(galera_cluster.url(0, "h14_smoke")) as connection:
            connection.execute(text("CREATE TABLE t (id INT PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with autocommit(galera_cluster.url(2, "h14_smoke")) as connection:
            connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
            assert connection.execute(text("SELECT id FROM t")).scalar() == 1
    finally:
        galera_cluster.drop_database("h14_smoke")
