"""Restart-under-load workload shared by the PostgreSQL and MariaDB resilience tests:
threads commit numbered rows through ``run_in_transaction`` while the server restarts;
afterwards every acknowledged row is there exactly once.

Half of the workers write idempotently (an upsert keyed on the row number, run with
``idempotent=True``: a COMMIT whose outcome is unknown is simply retried). The other
half insert into a table without a unique key, where a blind retry would duplicate the
row: they get ``CommitOutcomeUnknown``, look whether the row is there, and write it
only if it is not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Index, Integer, UniqueConstraint, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import CommitOutcomeUnknown, Session

#: Retry budget of every unit of work: enough to ride out a restart of a few seconds.
RETRIES = 40
MAX_SECONDS = 60.0


class Base(DeclarativeBase):
    pass


class KeyedRow(Base):
    """Written by idempotent upserts: (worker, seq) is unique."""

    __tablename__ = "resilience_keyed"
    __table_args__ = (UniqueConstraint("worker", "seq", name="uq_resilience_keyed"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


class PlainRow(Base):
    """Written by plain inserts: nothing stops a duplicate but the code."""

    __tablename__ = "resilience_plain"
    __table_args__ = (Index("ix_resilience_plain", "worker", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


@dataclass
class Tally:
    """What the workers saw."""

    acknowledged: dict[str, set[tuple[int, int]]] = field(
        default_factory=lambda: {"keyed": set(), "plain": set()}
    )
    unknown_commits: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _upsert(worker: int, seq: int) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.repository(KeyedRow).upsert_many(
            [{"worker": worker, "seq": seq}], on=["worker", "seq"], update=[]
        )

    return unit


def _insert(worker: int, seq: int) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.add(PlainRow(worker=worker, seq=seq))

    return unit


def _present(db: storelayer.Database, worker: int, seq: int) -> bool:
    def look(s: Session) -> bool:
        return s.repository(PlainRow).exists(worker=worker, seq=seq)

    return db.run_in_transaction(look, retries=RETRIES, max_seconds=MAX_SECONDS)


def _commit_one(db: storelayer.Database, worker: int, seq: int, tally: Tally) -> str:
    if worker % 2 == 0:
        db.run_in_transaction(
            _upsert(worker, seq), retries=RETRIES, max_seconds=MAX_SECONDS, idempotent=True
        )
        return "keyed"
    while True:
        try:
            db.run_in_transaction(_insert(worker, seq), retries=RETRIES, max_seconds=MAX_SECONDS)
            return "plain"
        except CommitOutcomeUnknown:
            with tally.lock:
                tally.unknown_commits += 1
            if _present(db, worker, seq):
                return "plain"


def worker_loop(db: storelayer.Database, worker: int, stop: threading.Event, tally: Tally) -> None:
    """Commit rows 0, 1, 2... until ``stop`` is set; record each acknowledged row."""
    seq = 0
    while not stop.is_set():
        try:
            table = _commit_one(db, worker, seq, tally)
        except Exception as error:  # reaching here is a failure of the test
            with tally.lock:
                tally.errors.append(f"worker {worker} row {seq}: {type(error).__name__}: {error}")
            return
        with tally.lock:
            tally.acknowledged[table].add((worker, seq))
        seq += 1


def run_under_restarts(
    db: storelayer.Database, restart: Callable[[], None], *, threads: int = 8, restarts: int = 2
) -> dict[str, Any]:
    """Run ``threads`` workers, restart the server ``restarts`` times, stop; returns
    the figures and the tally."""
    stop, tally = threading.Event(), Tally()
    workers = [
        threading.Thread(target=worker_loop, args=(db, n, stop, tally)) for n in range(threads)
    ]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    restart_seconds = []
    for _ in range(restarts):
        time.sleep(0.6)
        began = time.monotonic()
        restart()
        restart_seconds.append(round(time.monotonic() - began, 2))
    time.sleep(0.6)
    stop.set()
    for thread in workers:
        thread.join(timeout=MAX_SECONDS + 30)
    return {
        "tally": tally,
        "seconds": round(time.monotonic() - started, 2),
        "restart_seconds": restart_seconds,
        "hung_workers": sum(thread.is_alive() for thread in workers),
    }


def stored_rows(db: storelayer.Database) -> dict[str, list[tuple[int, int]]]:
    """Every (worker, seq) in both tables, duplicates included."""
    with db.read_session() as s:
        return {
            "keyed": [tuple(r) for r in s.execute(select(KeyedRow.worker, KeyedRow.seq))],
            "plain": [tuple(r) for r in s.execute(select(PlainRow.worker, PlainRow.seq))],
        }


def row_count(db: storelayer.Database) -> int:
    """Rows in both tables."""
    with db.read_session() as s:
        keyed = s.execute(select(func.count()).select_from(KeyedRow)).scalar_one()
        plain = s.execute(select(func.count()).select_from(PlainRow)).scalar_one()
    return int(keyed) + int(plain)
