"""SQLite tuning that a database decides: pragmas, the write lock taken up front, an
in-memory database shared by threads, several processes on one file."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

import storelayer
from storelayer import Database

INCREMENTS = 200


def make_counter(db: Database) -> None:
    with db.session() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        s.execute(text("INSERT INTO counter VALUES (1, 0)"))


def read_then_increment(db: Database) -> None:
    """The lost-update pattern: read in Python, write back. No lock hint at all."""
    with db.session() as s:
        n = s.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        s.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})


def counter_value(db: Database) -> int:
    with db.read_session() as s:
        return int(s.execute(text("SELECT n FROM counter")).scalar_one())


def test_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    db = storelayer.connect(f"sqlite:///{tmp_path}/p.db")
    with db.session() as s:
        pragmas = {
            name: s.execute(text(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }
    db.dispose()


def test_plain_sessions_lose_no_update_across_threads(tmp_path: Path) -> None:
    db = storelayer.connect(f"sqlite:///{tmp_path}/t.db")
    make_counter(db)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(INCREMENTS):
                read_then_increment(db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counter_value(db) == 4 * INCREMENTS
    db.dispose()


def _process_worker(url: str) -> None:
    db = storelayer.connect(url)
    for _ in range(INCREMENTS // 2):
        read_then_increment(db)
    db.dispose()


def test_plain_sessions_lose_no_update_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/procs.db"
    db = storelayer.connect(url)
    make_counter(db)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_worker, args=(url,)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert counter_value(db) == 4 * (INCREMENTS // 2)
    db.dispose()


def test_reader_is_not_blocked_by_an_open_writer(tmp_path: Path) -> None:
    db = storelayer.connect(f"sqlite:///{tmp_path}/r.db")
    make_counter(db)
    with db.session() as writer:
        writer.execute(text("UPDATE counter SET n = 41"))
        # the write lock is held; a read-only unit still reads the last committed value
        assert counter_value(db) == 0
    assert counter_value(db) == 41
    db.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_memory_database_is_shared_by_threads(url: str) -> None:
    db = storelayer.connect(url)
    make_counter(db)
    threads = [
        threading.Thread(target=lambda: [read_then_increment(db) for _ in range(50)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter_value(db) == 200
    db.dispose()


def test_unopenable_file_is_one_line_and_permanent(tmp_path: Path) -> None:
    db = storelayer.connect(f"sqlite:///{tmp_path}/missing-dir/x.db")
    with pytest.raises(storelayer.ConnectionFailed) as info:
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")))
    assert "missing-dir" in str(info.value)
    assert info.value.transient is False
