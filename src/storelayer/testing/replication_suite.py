"""The read-routing suite, run against real replication: a backend's test module
imports it with one line and supplies two fixtures::

    from storelayer.testing.replication_suite import *  # noqa: F403

    @pytest.fixture(scope="module")
    def replication_backend() -> Backend: ...      # the backend under test
    @pytest.fixture(scope="module")
    def server_port_sql() -> str: ...              # SQL giving the server's TCP port

The cluster comes from the backend's ``start_test_replicas`` (see
``storelayer.testing.replicas``): a primary and two replicas, started once per module.
Every wait is bounded; injected delays are removed and killed replicas restarted even
when a test fails.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select, text
from sqlalchemy.orm import Session

import storelayer
from storelayer.backend import Backend
from storelayer.routing import RoutingPolicy
from storelayer.testing.replicas import ReplicaSet, start_replicas

DATABASE = "storelayer_replication"
#: Replication delay the staleness tests inject, in seconds.
DELAY = 2.0
metadata = MetaData()
items = Table(
    "replication_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("note", String(40), nullable=False),
)
ServedBy = Callable[[Session], str]


@pytest.fixture(scope="module")
def replication_cluster(replication_backend: Backend) -> Iterator[ReplicaSet]:
    """A primary with two replicas and a database holding ``replication_items``."""
    with start_replicas(replication_backend, 2) as cluster:
        cluster.create_database(DATABASE)
        primary, _ = cluster.database_urls(DATABASE)
        engine = create_engine(replication_backend.normalize_url(primary))
        try:
            metadata.create_all(engine)
        finally:
            engine.dispose()
        cluster.wait_replayed()
        yield cluster


@pytest.fixture(scope="module")
def served_by(replication_cluster: ReplicaSet, server_port_sql: str) -> ServedBy:
    """Which server ran a session's statements, asked of the server itself."""
    primary, replicas = replication_cluster.database_urls(DATABASE)
    names = {primary.port: "primary", **{u.port: f"replica:{i}" for i, u in enumerate(replicas)}}

    def ask(s: Session) -> str:
        return names[s.execute(text(server_port_sql)).scalar_one()]

    return ask


def routed(cluster: ReplicaSet, max_lag: float = 5.0, **policy: Any) -> storelayer.Database:
    """A database on the cluster with fast sampling and a short token wait."""
    primary, replicas = cluster.database_urls(DATABASE)
    chosen = {"sample_interval": 0.1, "cooloff": 0.5, "token_wait": 0.005, "token_poll": 0.002}
    return storelayer.connect(
        primary,
        replicas=list(replicas),
        max_replica_lag=max_lag,
        routing=RoutingPolicy(**{**chosen, **policy}),
    )


def add(db: storelayer.Database, note: str) -> int:
    """Insert one row on the primary; its id."""
    with db.session() as s:
        return insert_row(s, note)


def insert_row(s: Session, note: str) -> int:
    """Insert one row in the session; its id."""
    result: Any = s.execute(items.insert().values(note=note))
    return int(result.inserted_primary_key[0])


def has_row(s: Session, row_id: int) -> bool:
    return s.execute(select(items.c.id).where(items.c.id == row_id)).first() is not None


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def delayed(cluster: ReplicaSet, seconds: float, indexes: tuple[int, ...]) -> Iterator[None]:
    """Inject replication delay on some replicas; always removed on exit."""
    for index in indexes:
        cluster.set_delay(index, seconds)
    try:
        yield
    finally:
        for index in indexes:
            cluster.set_delay(index, 0)
        cluster.wait_replayed(60)


def test_reads_reach_replicas_and_writes_the_primary(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    with routed(replication_cluster) as db:
        row_id = add(db, "hello")
        with db.session() as s:
            assert served_by(s) == "primary"
            assert has_row(s, row_id)
        replication_cluster.wait_replayed()
        seen: Counter[str] = Counter()
        for _ in range(20):
            with db.read_session() as s:
                assert has_row(s, row_id)
                seen[served_by(s)] += 1
        assert set(seen) == {"replica:0", "replica:1"}, seen  # round robin, no primary
        assert db.routing_stats().reads == dict(seen)


def test_token_reads_are_never_stale_under_replication_delay(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    tries, stale, stale_without_token = 1000, 0, 0
    fresh: Counter[str] = Counter()
    aged: Counter[str] = Counter()
    history: deque[tuple[float, str, int]] = deque()
    with routed(replication_cluster) as db, delayed(replication_cluster, DELAY, (0, 1)):
        for n in range(tries):
            row_id = add(db, f"try {n}")
            token = db.last_write_token()
            assert token is not None
            if n % 10 == 0:
                with db.read_session() as s:  # no token: allowed to be stale
                    stale_without_token += not has_row(s, row_id)
            with db.read_session(token=token) as s:
                stale += not has_row(s, row_id)
                fresh[served_by(s)] += 1
            history.append((time.monotonic(), token, row_id))
            if history and time.monotonic() - history[0][0] > DELAY + 0.5:
                _, old_token, old_id = history.popleft()
                with db.read_session(token=old_token) as s:
                    stale += not has_row(s, old_id)
                    aged[served_by(s)] += 1
        stats = db.routing_stats()
    print(  # shown with pytest -s / -rA: where the token reads went
        f"{tries} token reads right after their write: {dict(fresh)}; {sum(aged.values())} "
        f"token reads {DELAY + 0.5} s later: {dict(aged)}; reads without token stale: "
        f"{stale_without_token}/{tries // 10}; stale token reads: {stale}"
    )
    assert stale == 0, f"{stale} stale reads with a token"
    assert stale_without_token > 0, "the injected delay was not observed"
    assert fresh["primary"] > 0
    assert aged["replica:0"] + aged["replica:1"] > 0, aged
    # Each fresh read on the primary is a counted fallback: mostly "token_not_replayed";
    # on a loaded machine a replica can also be skipped for a moment ("no_replica").
    assert stats.fallbacks.get("token_not_replayed", 0) > 0, stats.fallbacks
    assert sum(stats.fallbacks.values()) >= fresh["primary"], stats.fallbacks


def test_a_token_gives_read_your_writes_in_another_process(
    replication_cluster: ReplicaSet,
) -> None:
    primary, replicas = replication_cluster.database_urls(DATABASE)
    program = (
        "import sys, storelayer\n"
        "from sqlalchemy import text\n"
        "db = storelayer.connect()\n"
        "with db.read_session(token=sys.argv[1]) as s:\n"
        "    found = s.execute(text('SELECT count(*) FROM replication_items"
        " WHERE id = ' + str(int(sys.argv[2])))).scalar()\n"
        "print(found, db.routing_stats().fallbacks)\n"
    )
    env = {
        "DATABASE_URL": primary.render_as_string(hide_password=False),
        "DATABASE_REPLICA_URLS": ",".join(
            u.render_as_string(hide_password=False) for u in replicas
        ),
        "STORELAYER_REPLICA_TOKEN_WAIT": "0.01",
        "PATH": "",
    }
    with routed(replication_cluster) as db, delayed(replication_cluster, DELAY, (0, 1)):
        row_id = add(db, "across processes")
        token = db.last_write_token()
        assert token is not None
        done = subprocess.run(
            [sys.executable, "-c", program, token, str(row_id)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("1 "), done.stdout


def test_a_replica_past_the_lag_threshold_receives_no_reads(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    stop = threading.Event()

    def keep_writing() -> None:
        with routed(replication_cluster) as writer:
            while not stop.wait(0.05):
                add(writer, "tick")

    writer = threading.Thread(target=keep_writing, daemon=True)
    with routed(replication_cluster, max_lag=1.0) as db:
        try:
            with delayed(replication_cluster, 3.0, (1,)):
                writer.start()

                def lagging() -> bool:
                    status = {r.name: r for r in db.routing_stats().replicas}
                    return (status["replica:1"].lag or 0.0) > 1.0

                with db.read_session() as s:  # starts the sampler
                    s.execute(select(func.count()).select_from(items))
                wait_until(lagging, 30, "replica:1 to report more than 1 s of lag")
                before = db.routing_stats().reads.get("replica:1", 0)
                seen: Counter[str] = Counter()
                for _ in range(100):
                    with db.read_session() as s:
                        seen[served_by(s)] += 1
                assert seen["replica:1"] == 0, seen
                assert seen["replica:0"] > 0, seen
                assert db.routing_stats().reads.get("replica:1", 0) == before
                problems = db.health().problems  # health judges by the same rule
                assert any(p.startswith("replica:1 is ") for p in problems), problems
                stop.set()
                writer.join(10)
        finally:
            stop.set()


def test_an_idle_caught_up_replica_is_never_flagged_as_lagging(
    replication_cluster: ReplicaSet, replication_backend: Backend
) -> None:
    with routed(replication_cluster, max_lag=1.0) as db:
        add(db, "then nothing for a while")
        replication_cluster.wait_replayed()
        with db.read_session() as s:
            s.execute(select(func.count()).select_from(items))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for replica in db.routing_stats().replicas:
                assert replica.eligible, replica
                assert replica.lag is not None, replica
                assert replica.lag < 1.0, replica
            for name, engine in db.engines().items():
                if name != "primary":
                    with engine.connect() as connection:
                        lag = replication_backend.replication.lag(connection)
                    assert lag is not None, name
                    assert lag < 1.0, name
            time.sleep(0.1)


def test_a_killed_replica_costs_no_failed_reads_and_serves_again(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    killed, restarted = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    after_restart: Counter[str] = Counter()

    def kill_then_restart() -> None:
        time.sleep(0.5)
        replication_cluster.stop_replica(0)
        killed.set()
        time.sleep(1.5)
        replication_cluster.start_replica(0)
        restarted.set()

    chaos = threading.Thread(target=kill_then_restart, daemon=True)
    reads = 0
    with routed(replication_cluster) as db:
        try:
            chaos.start()
            deadline = time.monotonic() + 90
            while not (restarted.is_set() and after_restart["replica:0"] >= 5):
                assert time.monotonic() < deadline, (db.routing_stats(), after_restart)
                try:
                    with db.read_session() as s:
                        s.execute(select(func.count()).select_from(items)).scalar_one()
                        where = served_by(s)
                except Exception as error:
                    failures.append(error)
                    continue
                reads += 1
                if restarted.is_set():
                    after_restart[where] += 1
            stats = db.routing_stats()
        finally:
            chaos.join(60)
            if not restarted.is_set():
                replication_cluster.start_replica(0)
    assert failures == [], failures[:3]
    assert killed.is_set()
    assert reads > 50
    assert stats.ejections.get("replica:0", 0) >= 1, stats
    assert stats.restores.get("replica:0", 0) >= 1, stats


def test_automatic_routing_reads_a_replica_until_the_first_write(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    with routed(replication_cluster, automatic=True) as db:
        with db.session() as s:
            s.execute(select(func.count()).select_from(items)).scalar_one()
            assert served_by(s).startswith("replica:")
            row_id = insert_row(s, "auto")
            assert has_row(s, row_id)
            assert served_by(s) == "primary"
        assert db.last_write_token() is not None


def test_the_async_database_routes_on_real_replication(
    replication_cluster: ReplicaSet, served_by: ServedBy
) -> None:
    primary, replicas = replication_cluster.database_urls(DATABASE)
    policy = RoutingPolicy(sample_interval=0.1, token_wait=0.005)

    async def scenario() -> tuple[str, bool, str, str]:
        db = storelayer.connect_async(primary, replicas=list(replicas), routing=policy)
        try:
            async with db.session() as s:
                row_id = await s.run_sync(insert_row, "async")
            token = db.last_write_token()
            async with db.read_session(token=token) as s:
                found = await s.run_sync(has_row, row_id)
                with_token = await s.run_sync(served_by)
            async with db.read_session() as s:
                without_token = await s.run_sync(served_by)
            return with_token, found, without_token, str(token)
        finally:
            await db.dispose()

    with delayed(replication_cluster, DELAY, (0, 1)):
        read_with, found, read_without, token = asyncio.run(scenario())
    assert found, token
    assert read_with == "primary"  # no replica replays within the 5 ms wait
    assert read_without.startswith("replica:")


#: The fixtures and tests a backend's test module takes in with ``import *``.
__all__ = ["replication_cluster", "served_by"]
__all__ += sorted(name for name in dict(globals()) if name.startswith("test_"))
