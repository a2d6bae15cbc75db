"""Read routing on SQLite: replicas are read-only connections to the same file (WAL
readers) or to a copy; lag is unknown, so only failures take a replica out."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _routing_clock import FAST, WINDOW, age_tokens
from sqlalchemy import event, exc, text

import storelayer
from storelayer import ConfigurationError, ReplicaUnavailable
from storelayer.routing import session_target, write_token
from storelayer_sqlite.replication import reader_url


def served_by(s: storelayer.Session) -> str:
    """Where the session's statements went: "primary" or "replica"."""
    target = session_target(s)
    assert target is not None
    return target.partition(":")[0]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "app.db"
    with storelayer.connect(f"sqlite:///{file}") as db, db.session() as s:
        s.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT)"))
    return file


@pytest.fixture
def db(path: Path) -> Iterator[storelayer.Database]:
    database = storelayer.connect(f"sqlite:///{path}", replicas=[reader_url(path)], routing=FAST)
    yield database
    database.dispose()


def add(db: storelayer.Database, note: str) -> str | None:
    with db.session() as s:
        s.execute(text("INSERT INTO items (note) VALUES (:n)"), {"n": note})
    return write_token(s)


def count(s: storelayer.Session) -> int:
    return int(s.execute(text("SELECT count(*) FROM items")).scalar_one())


def test_reads_go_to_the_replica_and_writes_to_the_primary(db: storelayer.Database) -> None:
    add(db, "a")
    with db.read_session() as s:
        assert count(s) == 1  # a WAL reader sees every commit at once
        assert served_by(s) == "replica"
    with db.session() as s:
        assert count(s) == 1 and served_by(s) == "primary"
    with db.read_session() as s, pytest.raises(exc.OperationalError, match="readonly"):
        s.execute(text("INSERT INTO items (note) VALUES ('no')"))
    stats = db.routing_stats()
    assert stats.reads == {"replica:0": 2}
    assert list(db.engines()) == ["primary", "replica:0"]


def test_using_primary_and_invalid_targets(db: storelayer.Database) -> None:
    with db.read_session(using="primary") as s:
        assert count(s) == 0 and served_by(s) == "primary"
    with db.session(using="replica") as s:
        assert count(s) == 0 and served_by(s) == "replica"
    with (
        pytest.raises(ConfigurationError, match="using='nowhere'"),
        db.read_session(using="nowhere"),
    ):
        pass


def test_automatic_routing_reads_a_replica_until_the_first_write(path: Path) -> None:
    policy = FAST.with_options(automatic=True)
    with storelayer.connect(f"sqlite:///{path}", replicas=[reader_url(path)], routing=policy) as db:
        with db.session() as s:
            assert count(s) == 0
            assert served_by(s) == "replica"
            s.execute(text("INSERT INTO items (note) VALUES ('x')"))
            assert count(s) == 1  # its own write: the session moved to the primary
            assert served_by(s) == "primary"
        assert write_token(s) is not None
        with db.session(using="primary") as s:
            assert count(s) == 1 and served_by(s) == "primary"
        assert db.routing_stats().reads == {"replica:0": 1}


def test_a_unit_at_an_isolation_level_reads_the_primary_and_leaves_a_token(path: Path) -> None:
    policy = FAST.with_options(automatic=True)
    with storelayer.connect(f"sqlite:///{path}", replicas=[reader_url(path)], routing=policy) as db:
        with db.session(isolation="serializable") as s:
            assert count(s) == 0 and served_by(s) == "primary"
        added = db.run_in_transaction(
            lambda s: s.execute(text("INSERT INTO items (note) VALUES ('y')"))
        )
        assert added is not None and db.last_write_token() is not None
        assert db.routing_stats().reads == {}


def test_a_write_leaves_a_token_in_the_session_and_this_thread(db: storelayer.Database) -> None:
    assert db.last_write_token() is None
    token = add(db, "a")
    assert token is not None and token.startswith("sl1.")
    assert db.last_write_token() == token
    with db.session() as s:
        count(s)
    assert write_token(s) is None  # read nothing-but-reads: no new token
    assert db.last_write_token() == token
    other: list[str | None] = []
    thread = threading.Thread(target=lambda: other.append(db.last_write_token()))
    thread.start()
    thread.join()
    assert other == [None]


def test_a_fresh_token_without_position_reads_the_primary(db: storelayer.Database) -> None:
    token = add(db, "a")
    with db.read_session(token=token) as s:
        assert count(s) == 1 and served_by(s) == "primary"
    age_tokens(db, WINDOW + 1)
    with db.read_session(token=token) as s:
        assert count(s) == 1 and served_by(s) == "replica"
    assert db.routing_stats().fallbacks == {"token_window": 1}


def test_an_unreadable_token_reads_the_primary(db: storelayer.Database) -> None:
    with db.read_session(token="sl1.x.';DROP TABLE items") as s:
        assert count(s) == 0 and served_by(s) == "primary"
    assert db.routing_stats().fallbacks == {"invalid_token": 1}


def test_a_missing_replica_is_ejected_probed_and_restored(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with storelayer.connect(f"sqlite:///{path}", replicas=[reader_url(copy)], routing=FAST) as db:
        for _ in range(3):
            with db.read_session() as s:
                assert count(s) == 0 and served_by(s) == "primary"  # no copy yet
        with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        deadline = time.monotonic() + 10
        while db.routing_stats().restores.get("replica:0", 0) == 0:
            assert time.monotonic() < deadline, db.routing_stats()
            time.sleep(0.02)
        with db.read_session() as s:
            assert count(s) == 0 and served_by(s) == "replica"
        stats = db.routing_stats()
        assert stats.ejections == {"replica:0": 1}
        assert stats.fallbacks["no_replica"] >= 2


def test_fallback_error_refuses_to_read_the_primary(path: Path, tmp_path: Path) -> None:
    policy = FAST.with_options(fallback="error")
    missing = reader_url(tmp_path / "missing.db")
    with storelayer.connect(f"sqlite:///{path}", replicas=[missing], routing=policy) as db:
        with pytest.raises(ReplicaUnavailable, match="fallback is 'error'"), db.read_session() as s:
            count(s)
        with db.read_session(using="primary") as s:
            assert count(s) == 0


def test_a_replica_failing_mid_read_moves_the_read_to_the_primary(
    db: storelayer.Database,
) -> None:
    add(db, "a")
    failures = iter([True])

    def die_once(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "count(*)" in statement and next(failures, False):
            raise exc.OperationalError(
                statement, {}, Exception("gone"), connection_invalidated=True
            )

    replica = db.engines()["replica:0"]
    event.listen(replica, "before_cursor_execute", die_once)
    with db.read_session() as s:
        assert count(s) == 1
        assert served_by(s) == "primary"
    stats = db.routing_stats()
    assert stats.fallbacks == {"replica_failed": 1}
    assert stats.ejections == {"replica:0": 1}


def test_replicas_from_the_environment(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URLS", f"{reader_url(path)}, {reader_url(path)}")
    with storelayer.connect(f"sqlite:///{path}") as db:
        assert list(db.engines()) == ["primary", "replica:0", "replica:1"]


def test_without_replicas_nothing_changes(path: Path) -> None:
    with storelayer.connect(f"sqlite:///{path}") as db:
        add(db, "a")
        with db.read_session() as s:
            assert count(s) == 1
        assert db.last_write_token() is None
        assert db.routing_stats().reads == {}
        assert list(db.engines()) == ["primary"]


def test_health_judges_replicas_by_the_routing_rule(path: Path, tmp_path: Path) -> None:
    missing = reader_url(tmp_path / "missing.db")
    replicas = [reader_url(path), missing]
    with storelayer.connect(f"sqlite:///{path}", replicas=replicas, routing=FAST) as db:
        report = db.health()
        for _ in range(2):  # round robin: one read tries each replica first
            with db.read_session() as s:
                count(s)
        status = {r.name: r.eligible for r in db.routing_stats().replicas}
    assert status == {"replica:0": True, "replica:1": False}
    assert report.status == "degraded" and not report.ready
    assert [p[:22] for p in report.problems] == ["replica:1 unreachable:"]
