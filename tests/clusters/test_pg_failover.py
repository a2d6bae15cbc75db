"""A pg_auto_failover formation (storelayer.testing.clusters): the URI ``pg_autoctl show
uri`` prints works as DATABASE_URL, backup through a host list dumps the primary (not a
same-named database on the default server), and a planned switchover under writers
loses, duplicates and fails nothing."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import storelayer
from storelayer.plugins import get_plugin_manager
from storelayer.testing import PgAutoFailover
from storelayer.testing.clusters_pg import DEFAULT_SERVER, autocommit
from storelayer.testing.clusters_process import wait_until

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "storelayer", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _has_database(pg_failover: PgAutoFailover, index: int, name: str) -> bool:
    """Whether node ``index`` has database ``name`` (a standby: once it replayed it)."""
    with autocommit(pg_failover.node_url(index, "postgres")) as connection:
        found = text("SELECT 1 FROM pg_database WHERE datname = :name")
        return connection.execute(found, {"name": name}).first() is not None


@pytest.fixture
def formation_database(pg_failover: PgAutoFailover) -> Iterator[str]:
    """A fresh database on the formation (primary and standby); its name."""
    name = f"h14_{secrets.token_hex(4)}"
    pg_failover.wait_stable()  # not while a switchover's demoted node is still rejoining
    pg_failover.create_database(name)
    wait_until(lambda: all(_has_database(pg_failover, i, name) for i in (0, 1)), name)
    yield name
    with autocommit(pg_failover.node_url(pg_failover.primary_index(), "postgres")) as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_fixture_runs_a_primary_and_a_standby(pg_failover: PgAutoFailover) -> None:
    states = sorted(reported for reported, _goal in pg_failover.states().values())
    assert states == ["primary", "secondary"]
    uri = pg_failover.uri()
    assert uri.startswith("postgres://127.0.0.1:")
    assert uri.count(",") == 1
    assert "target_session_attrs=read-write" in uri


def test_the_uri_pg_autoctl_prints_is_a_database_url(pg_failover: PgAutoFailover) -> None:
    uri = pg_failover.uri()
    primary_port = pg_failover.node_ports[pg_failover.primary_index()]
    db = storelayer.connect(uri)
    try:
        with db.session() as s:
            port = s.execute(text("SELECT inet_server_port()")).scalar()
        assert db.health().status == "healthy"
    finally:
        db.dispose()
    assert port == primary_port
    done = cli("health", "--json", url=uri)
    assert done.returncode == 0, done.stdout + done.stderr


def fill(url: object, rows: int) -> None:
    with autocommit(url) as connection:  # type: ignore[arg-type]
        connection.exec_driver_sql("CREATE TABLE marks (id int PRIMARY KEY)")
        connection.exec_driver_sql(f"INSERT INTO marks SELECT generate_series(1, {rows})")


@pytest.mark.parametrize("form", ["libpq", "sqlalchemy"])
def test_backup_through_a_host_list_dumps_the_primary(
    pg_failover: PgAutoFailover, formation_database: str, tmp_path: Path, form: str
) -> None:
    name = formation_database
    fill(pg_failover.node_url(pg_failover.primary_index(), name), 7)
    # A decoy of the same name on the machine's default server, where libpq falls back.
    backend = get_plugin_manager().backends()["postgresql"]
    default = storelayer.config.parse_url(DEFAULT_SERVER)
    decoy = backend.provisioning.create_database(default, name)
    try:
        fill(decoy.set(drivername="postgresql+psycopg2"), 1)
        hosts = [f"127.0.0.1:{port}" for port in pg_failover.node_ports]
        if form == "libpq":
            url = f"postgresql://postgres@{','.join(hosts)}/{name}?target_session_attrs=read-write"
        else:
            query = "&".join(f"host={h}" for h in hosts)
            url = f"postgresql://postgres@/{name}?{query}&target_session_attrs=read-write"
        done = cli("backup", str(tmp_path / "b.storelayer"), "--json", url=url)
        assert done.returncode == 0, done.stdout + done.stderr
        manifest = json.loads(done.stdout)["manifest"]
    finally:
        backend.provisioning.drop_database(default, name)
    assert list(manifest["tables"].values()) == [7]  # the primary's 7 rows, not the decoy's 1


def test_a_switchover_under_writers_loses_nothing(
    pg_failover: PgAutoFailover, formation_database: str
) -> None:
    name = formation_database
    with autocommit(pg_failover.node_url(pg_failover.primary_index(), name)) as connection:
        connection.exec_driver_sql("CREATE TABLE units (writer int, seq int)")
    db = storelayer.connect(pg_failover.multi_host_url(name))
    acknowledged: list[tuple[int, int]] = []
    failures: list[str] = []
    stop = threading.Event()
    stalls: list[float] = []

    def writer(number: int) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            started = time.monotonic()
            try:
                db.run_in_transaction(
                    lambda s, n=seq: s.execute(
                        text("INSERT INTO units VALUES (:w, :n)"), {"w": number, "n": n}
                    )
                )
            except Exception as error:
                failures.append(type(error).__name__)
                continue
            stalls.append(time.monotonic() - started)
            acknowledged.append((number, seq))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        before = pg_failover.primary_index()
        pg_failover.switchover()
        assert pg_failover.primary_index() != before
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
        db.dispose()
    with autocommit(pg_failover.node_url(pg_failover.primary_index(), name)) as connection:
        rows = connection.exec_driver_sql("SELECT writer, seq FROM units").all()
    stored = [(int(w), int(s)) for w, s in rows]
    print(f"switchover: {len(acknowledged)} units, longest {max(stalls):.1f} s")
    assert failures == []
    assert len(stored) == len(set(stored)), "duplicated units"
    assert set(acknowledged) <= set(stored), "lost units"
    assert len(acknowledged) > 8


def read_port(db: storelayer.Database) -> tuple[int, bool]:
    with db.read_session() as s:
        row = s.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
    return int(row[0]), bool(row[1])


def test_a_promoted_replica_is_dropped_and_its_standby_url_resolves_again(
    pg_failover: PgAutoFailover, formation_database: str
) -> None:
    name = formation_database
    standby_url = pg_failover.multi_host_url(name).replace("read-write", "standby")
    db = storelayer.connect(pg_failover.multi_host_url(name), replicas=[standby_url])
    try:
        standby = pg_failover.node_ports[1 - pg_failover.primary_index()]
        wait_for(lambda: read_port(db) == (standby, True), "a read on the standby",
                 why=lambda: db.routing_stats().replicas)
        pg_failover.switchover()
        new_standby = pg_failover.node_ports[1 - pg_failover.primary_index()]
        assert new_standby != standby
        # Reads fall back to the primary meanwhile; then the replica engine reconnects
        # and libpq's target_session_attrs=standby finds the other server.
        wait_for(lambda: read_port(db) == (new_standby, True), "a read on the new standby",
                 why=lambda: db.routing_stats().replicas)
    finally:
        db.dispose()


def wait_for(
    check: object, what: str, timeout: float = 120.0, why: Callable[[], object] = str
) -> None:
    """Poll ``check`` until true; the failure names ``what`` and ``why()`` (the state
    that explains it, e.g. each replica's ejection reason)."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s: {why()}"
        time.sleep(0.5)
