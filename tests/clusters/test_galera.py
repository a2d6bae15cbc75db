"""A 3-node MariaDB Galera cluster (storelayer.testing.clusters): ordered host lists, hot-row
certification conflicts, concurrent migrations on two nodes, the node in use killed under
load. Figures go to docs/operations/clusters.md."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text

import storelayer
from storelayer.backend.concerns import WAITING
from storelayer.testing import GaleraCluster
from storelayer.testing.clusters_galera import autocommit
from storelayer_mysql.migration_lock import MySQLMigrations

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def galera_database(galera_cluster: GaleraCluster) -> Iterator[str]:
    """A fresh database on the cluster; its name."""
    name = f"h14_{secrets.token_hex(4)}"
    galera_cluster.create_database(name)
    yield name
    galera_cluster.drop_database(name)


def test_the_fixture_runs_three_synced_nodes(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    assert all(galera_cluster.synced(i) for i in range(3))
    with autocommit(galera_cluster.url(0, galera_database)) as connection:
        connection.execute(text("CREATE TABLE t (id INT PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with autocommit(galera_cluster.url(2, galera_database)) as connection:
        connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
        assert connection.execute(text("SELECT id FROM t")).scalar() == 1


def test_a_host_list_connects_to_the_first_node_that_takes_writes(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    url = galera_cluster.host_list_url(galera_database, [1, 0, 2])
    db = storelayer.connect(url)
    try:
        with db.session() as s:
            port = s.execute(text("SELECT @@port")).scalar()
        assert db.health().status == "healthy"
    finally:
        db.dispose()
    assert port == galera_cluster.nodes[1].port


class Load:
    """Writers running one unit of work in a loop; what each unit did, and how long the
    longest took."""

    def __init__(self) -> None:
        self.acknowledged: list[tuple[int, int]] = []
        self.failures: list[str] = []
        self.longest = 0.0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(
        self, db: storelayer.Database, unit: Callable[[Any, int, int], None], n: int, **options: Any
    ) -> None:
        def writer(number: int) -> None:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                started = time.monotonic()
                try:
                    db.run_in_transaction(lambda s, q=seq: unit(s, number, q), **options)
                except Exception as error:
                    self.failures.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                self.longest = max(self.longest, time.monotonic() - started)
                self.acknowledged.append((number, seq))

        thread = threading.Thread(target=writer, args=(n,))
        self.threads.append(thread)
        thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(180)


def bump(s: Any, _writer: int, _seq: int) -> None:
    s.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))


def test_hot_row_writers_on_two_nodes_keep_the_counter_exact(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    with autocommit(galera_cluster.url(0, galera_database)) as connection:
        connection.execute(text("CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (1, 0)"))
    dbs = [
        storelayer.connect(galera_cluster.host_list_url(galera_database, order))
        for order in ([0, 1, 2], [1, 0, 2])
    ]
    load = Load()
    try:
        for writer in range(8):
            load.start(dbs[writer % 2], bump, writer)
        time.sleep(15)
    finally:
        load.finish()
        for db in dbs:
            db.dispose()
    with autocommit(galera_cluster.url(2, galera_database)) as connection:
        connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
        counter = connection.execute(text("SELECT n FROM counter")).scalar()
    print(f"hot row: {len(load.acknowledged)} units, longest {load.longest:.1f} s")
    assert load.failures == []
    assert counter == len(load.acknowledged) > 8


def test_a_node_cut_off_from_the_cluster_is_left_for_another(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    with autocommit(galera_cluster.url(0, galera_database)) as connection:
        connection.execute(text("CREATE TABLE marks (id INT PRIMARY KEY, port INT)"))
    db = storelayer.connect(galera_cluster.host_list_url(galera_database))

    def mark(number: int) -> int:
        def unit(s: Any) -> int:
            port = int(s.execute(text("SELECT @@port")).scalar())
            s.execute(text("INSERT INTO marks VALUES (:n, :p)"), {"n": number, "p": port})
            return port

        return db.run_in_transaction(unit)

    try:
        assert mark(1) == galera_cluster.nodes[0].port
        galera_cluster.isolate(0)
        wait_until(lambda: galera_cluster.status(0)["wsrep_ready"] == "OFF")
        # The pooled connection meets 1047 there: the unit moves to the next node.
        assert mark(2) == galera_cluster.nodes[1].port
        assert db.health().status == "healthy"
    finally:
        db.dispose()
        galera_cluster.isolate(0, False)
        wait_until(lambda: all(galera_cluster.synced(i) for i in range(3)))


def wait_until(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s"
        time.sleep(0.5)


def migrate(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(
        # --debug: a failure in CI shows where it came from (its traceback)
        [sys.executable, "-m", "storelayer", "--debug", "migrate", "upgrade"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_two_migrators_on_two_nodes_at_once(galera_cluster: GaleraCluster) -> None:
    for trial in range(5):
        name = f"h14_migrate_{secrets.token_hex(4)}"
        galera_cluster.create_database(name)
        try:
            runs = [migrate(galera_cluster.host_list_url(name, [i])) for i in (0, 1)]
            outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
            codes = [run.returncode for run in runs]
            assert codes == [0, 0], f"trial {trial}: exit statuses {codes}: {outputs}"
            versions = set()
            for node in range(3):
                with autocommit(galera_cluster.url(node, name)) as connection:
                    connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
                    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                    versions.add(tuple(rows.scalars()))
            assert len(versions) == 1 and len(next(iter(versions))) == 1, versions
        finally:
            galera_cluster.drop_database(name)


def test_a_migrator_waiting_on_a_node_cut_off_for_a_moment_waits_on(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    """The lock's waiter meets 1047 while its node is out of the primary component (as
    a node starved of CPU for evs.suspect_timeout is): it keeps waiting, then migrates."""
    engine = create_engine(galera_cluster.url(0, galera_database), poolclass=pool.NullPool)
    try:
        with engine.connect() as holder, MySQLMigrations().lock(
            holder, "alembic_version", 60, lambda _message: None
        ):
            waiter = migrate(galera_cluster.host_list_url(galera_database, [1]))
            assert waiter.stdout is not None
            assert WAITING in waiter.stdout.readline().decode()
            galera_cluster.isolate(1)
            try:
                wait_until(lambda: galera_cluster.status(1)["wsrep_ready"] == "OFF")
                time.sleep(1)  # several attempts meet 1047
            finally:
                galera_cluster.isolate(1, False)
                wait_until(lambda: all(galera_cluster.synced(i) for i in range(3)))
        output = waiter.communicate(timeout=300)[0].decode()
    finally:
        engine.dispose()
    assert waiter.returncode == 0, output
    assert "upgraded" in output
    with autocommit(galera_cluster.url(2, galera_database)) as connection:
        connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
        assert connection.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1


def insert_unit(s: Any, writer: int, seq: int) -> None:
    # Idempotent (its key decides): a COMMIT lost with the node cannot be asked about on
    # MySQL/MariaDB, so only an idempotent unit may run again after one.
    statement = text("INSERT IGNORE INTO units (writer, seq) VALUES (:w, :s)")
    s.execute(statement, {"w": writer, "s": seq})


def test_the_node_in_use_killed_under_load(
    galera_cluster: GaleraCluster, galera_database: str
) -> None:
    with autocommit(galera_cluster.url(0, galera_database)) as connection:
        connection.execute(
            text("CREATE TABLE units (writer INT, seq INT, PRIMARY KEY (writer, seq))")
        )
    db = storelayer.connect(galera_cluster.host_list_url(galera_database))
    load = Load()
    try:
        for writer in range(8):
            load.start(db, insert_unit, writer, idempotent=True)
        time.sleep(3)
        galera_cluster.kill_node(0)
        time.sleep(8)
    finally:
        load.finish()
        db.dispose()
    with autocommit(galera_cluster.url(1, galera_database)) as connection:
        connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
        rows = connection.execute(text("SELECT writer, seq FROM units")).all()
    galera_cluster.start_node(0)
    stored = {(int(w), int(s)) for w, s in rows}
    print(f"node killed: {len(load.acknowledged)} units, longest {load.longest:.1f} s")
    assert load.failures == []
    assert set(load.acknowledged) <= stored, "lost units"
    assert len(load.acknowledged) == len(set(load.acknowledged))
    assert load.longest < 30
