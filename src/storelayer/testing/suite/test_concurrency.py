"""Concurrent units of work on one ``Database``: read-then-write under a row lock loses
no update, ``SKIP LOCKED`` passes over a locked row, and a unique constraint admits one
winner."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import select

from storelayer.database import Database
from storelayer.errors import Conflict
from storelayer.session import Session
from storelayer.testing.suite.models import ConformanceCounter, ConformanceUser

R = TypeVar("R")


def new_counter(database: Database) -> int:
    """A counter at zero; its key."""
    with database.session() as s:
        return s.repository(ConformanceCounter).create(value=0).id


def read_counter(database: Database, key: int) -> int:
    with database.read_session() as s:
        return s.repository(ConformanceCounter).get_or_raise(key).value


def increment(key: int, pause: float) -> Callable[[Session], int]:
    """A unit of work that reads the counter under a row lock, waits ``pause`` seconds
    (widening the window in which a lost update would happen), and writes it plus one."""

    def work(s: Session) -> int:
        counter = s.repository(ConformanceCounter).get_or_raise(key, for_update=True)
        seen = counter.value
        if pause:
            time.sleep(pause)
        counter.value = seen + 1
        return seen + 1

    return work


def run_threads(threads: int, body: Callable[[], R]) -> list[R]:
    """Run ``body`` in ``threads`` threads started together; re-raise the first error."""
    start = threading.Barrier(threads)

    def run() -> R:
        start.wait(timeout=30)
        return body()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run) for _ in range(threads)]
        return [f.result(timeout=300) for f in futures]


def hammer(database: Database, threads: int, per_thread: int, pause: float) -> int:
    """``threads`` x ``per_thread`` increments through ``run_in_transaction``; the
    final value."""
    key = new_counter(database)
    work = increment(key, pause)

    def body() -> list[int]:
        return [database.run_in_transaction(work) for _ in range(per_thread)]

    results = run_threads(threads, body)
    seen = sorted(v for r in results for v in r)
    assert seen == list(range(1, threads * per_thread + 1)), "two units saw the same value"
    return read_counter(database, key)


@pytest.mark.requires("row_locks")
def test_two_threads_incrementing_under_a_row_lock_lose_no_update(database: Database) -> None:
    assert hammer(database, threads=2, per_thread=50, pause=0.002) == 100


@pytest.mark.requires("row_locks")
def test_four_threads_times_200_increments_end_at_exactly_800(database: Database) -> None:
    assert hammer(database, threads=4, per_thread=200, pause=0.0) == 800


@pytest.mark.requires("for_update", "skip_locked")
def test_skip_locked_passes_over_the_row_another_unit_locked(database: Database) -> None:
    keys = [new_counter(database), new_counter(database)]
    query = select(ConformanceCounter.id).where(ConformanceCounter.id.in_(keys))
    with database.session() as holder:
        holder.repository(ConformanceCounter).get_or_raise(keys[0], for_update=True)
        with database.engine.connect() as other:  # no repository API for SKIP LOCKED
            free = other.execute(query.with_for_update(skip_locked=True)).scalars().all()
    assert free == keys[1:]


def test_racing_creates_of_one_unique_value_admit_one_winner(database: Database) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def body() -> None:
        try:
            with database.session() as s:
                email = f"{threading.get_ident()}@example.com"
                s.repository(ConformanceUser).create(username="race", email=email)
            outcome = "created"
        except Conflict:
            outcome = "conflict"
        with lock:
            outcomes.append(outcome)

    run_threads(4, body)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "created"]
    with database.read_session() as s:
        assert s.repository(ConformanceUser).count(username="race") == 1
