"""Units of work under deadlocks, exhaustion and injected faults, on every backend
(scratch databases on the shared servers; nothing there is restarted or reconfigured)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _checks import record
from sqlalchemy import Integer, String, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import (
    CommitOutcomeUnknown,
    PoolExhausted,
    Session,
    TransientError,
)
from storelayer.faults import InjectedFault, inject_transient_errors


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "resilience_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(40), default="")


@pytest.fixture
def accounts(database_url: URL, backend: storelayer.Backend) -> Iterator[storelayer.Database]:
    """The scratch database with accounts 1 and 2 at balance 0."""
    with storelayer.connect(database_url, backend=backend.name) as db:
        Base.metadata.create_all(db.engine)
        with db.session() as s:
            s.execute(Account.__table__.delete())
            s.add_all([Account(id=1, balance=0), Account(id=2, balance=0)])
        yield db


def balances(db: storelayer.Database) -> dict[int, int]:
    with db.read_session() as s:
        return {a.id: a.balance for a in s.execute(select(Account)).scalars()}


# -- deadlocks ---------------------------------------------------------------------------


@pytest.mark.requires("for_update")
def test_a_deadlock_is_retried_and_both_units_commit(accounts: storelayer.Database) -> None:
    barrier = threading.Barrier(2, timeout=10)
    attempts = {1: 0, 2: 0}
    failures: list[BaseException] = []

    def transfer(first: int, second: int) -> Callable[[Session], None]:
        def unit(s: Session) -> None:
            attempts[first] += 1
            s.execute(
                text("UPDATE resilience_accounts SET balance = balance + 1 WHERE id = :i"),
                {"i": first},
            )
            if attempts[first] == 1:
                barrier.wait()  # both hold their first row: each now waits for the other
            s.execute(
                text("UPDATE resilience_accounts SET balance = balance + 1 WHERE id = :i"),
                {"i": second},
            )

        return unit

    def run(first: int, second: int) -> None:
        try:
            accounts.run_in_transaction(transfer(first, second), retries=5)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert balances(accounts) == {1: 2, 2: 2}
    # One unit won and ran once; the other lost the deadlock and ran again (at the
    # default serializable level, a rerun that starts before the winner commits also
    # loses a serialization conflict to it, and runs once more).
    winner, loser = sorted(attempts.values())
    assert winner == 1 and loser >= 2
    assert accounts.metrics()["engines"]["primary"]["retries"] == loser - 1


# -- pool exhaustion ---------------------------------------------------------------------


def test_an_exhausted_pool_says_so_and_serves_normally_afterwards(
    database_url: URL, backend: storelayer.Backend
) -> None:
    db = storelayer.connect(
        database_url, backend=backend.name, pool_size=4, max_overflow=0, pool_timeout=0.2
    )
    errors: list[BaseException] = []
    served = []

    def hold() -> None:
        try:
            with db.read_session() as s:
                s.execute(text("SELECT 1"))
                time.sleep(0.5)
            served.append(1)
        except BaseException as error:
            errors.append(error)

    try:
        threads = [threading.Thread(target=hold) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors and all(isinstance(e, PoolExhausted) for e in errors), errors
        message = str(errors[0])
        for fragment in (
            "pool_size=4",
            "max_overflow=0",
            "pool_timeout=0.2s",
            "STORELAYER_POOL_SIZE",
        ):
            assert fragment in message
        assert len(served) + len(errors) == 32 and len(served) >= 4
        for _ in range(8):  # the pool serves normally afterwards
            assert db.run_in_transaction(lambda s: s.execute(text("SELECT 7")).scalar()) == 7
        pool = db.metrics()["engines"]["primary"]["pool"]
        assert pool["checked_out"] == 0 and pool["timeouts"] == len(errors)
    finally:
        db.dispose()
    record(
        f"{backend.name} pool exhaustion",
        {"served": len(served), "refused": len(errors), "error": message},
    )


# -- retries and injected faults (backend-independent: an SQLite file) -------------------


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[storelayer.Database]:
    with storelayer.connect(f"sqlite:///{tmp_path / 'faults.db'}", slow_statement_ms=0) as db:
        Base.metadata.create_all(db.engine)
        yield db


def add(account_id: int) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.add(Account(id=account_id, balance=10))

    return unit


def count(db: storelayer.Database) -> int:
    with db.read_session() as s:
        return s.repository(Account).count()


def test_injected_transient_errors_are_retried_as_whole_units(lite: storelayer.Database) -> None:
    with inject_transient_errors(lite, times=2, match="INSERT") as faults:
        lite.run_in_transaction(add(1))
    assert faults.raised == 2 and count(lite) == 1
    assert lite.metrics()["engines"]["primary"]["retries"] == 2


def test_a_failure_before_commit_is_retried(lite: storelayer.Database) -> None:
    with inject_transient_errors(lite, times=1, at="commit"):
        lite.run_in_transaction(add(1))
    assert count(lite) == 1


def test_running_out_of_retries_chains_the_last_error(lite: storelayer.Database) -> None:
    with (
        inject_transient_errors(lite, times=100, match="INSERT"),
        pytest.raises(TransientError) as caught,
    ):
        lite.run_in_transaction(add(1), retries=2)
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, InjectedFault)
    assert count(lite) == 0


def test_the_total_time_is_capped(lite: storelayer.Database) -> None:
    started = time.monotonic()
    with inject_transient_errors(lite, times=10_000, match="INSERT"), pytest.raises(TransientError):
        lite.run_in_transaction(add(1), retries=10_000, max_seconds=0.5)
    assert time.monotonic() - started < 1.0


def test_other_errors_propagate_at_once(lite: storelayer.Database) -> None:
    calls = []

    def unit(s: Session) -> None:
        calls.append(1)
        s.add(Account(id=1))
        raise ValueError("a bug in the unit of work")

    with pytest.raises(ValueError, match="a bug"):
        lite.run_in_transaction(unit, retries=5)
    assert calls == [1] and count(lite) == 0


def test_a_lost_commit_is_not_retried_blindly(lite: storelayer.Database) -> None:
    calls = []

    def unit(s: Session) -> None:
        calls.append(1)
        s.add(Account(id=len(calls), balance=1))

    with (
        inject_transient_errors(lite, at="commit_lost"),
        pytest.raises(CommitOutcomeUnknown) as caught,
    ):
        lite.run_in_transaction(unit, retries=5)
    assert calls == [1] and count(lite) == 1  # it did commit; nothing was doubled
    assert "idempotent=True" in str(caught.value)


def test_an_idempotent_unit_is_retried_after_a_lost_commit(lite: storelayer.Database) -> None:
    calls = []

    def unit(s: Session) -> None:
        calls.append(1)
        s.repository(Account).upsert_many([{"id": 1, "balance": 5}], on=["id"])

    with inject_transient_errors(lite, at="commit_lost"):
        lite.run_in_transaction(unit, idempotent=True)
    assert calls == [1, 1] and count(lite) == 1


def test_metrics_count_time_and_redact(lite: storelayer.Database) -> None:
    heard: list[storelayer.metrics.MetricsEvent] = []

    class Exporter:
        @storelayer.hookimpl
        def storelayer_metrics_event(self, event: storelayer.metrics.MetricsEvent) -> None:
            heard.append(event)

    lite.plugins.register(Exporter(), name="test-exporter")
    try:
        with lite.session() as s:
            s.execute(text("SELECT 'hunter2' AS secret, 42 AS answer"))
        with inject_transient_errors(lite, times=1, match="INSERT"):
            lite.run_in_transaction(add(1))
    finally:
        lite.plugins.unregister("test-exporter")
    snapshot = lite.metrics()["engines"]["primary"]
    assert snapshot["statements"] >= 2 and snapshot["retries"] == 1
    assert snapshot["latency_ms"]["p50"] is not None and snapshot["latency_ms"]["p99"] is not None
    slow_sql = [entry["sql"] for entry in snapshot["slow_statements"]]
    assert "SELECT '?' AS secret, ? AS answer" in slow_sql
    assert "hunter2" not in repr(snapshot) and "hunter2" not in repr(heard)
    assert {"statement", "slow_statement", "retry"} <= {e.kind for e in heard}
    assert snapshot["pool"]["checkouts"] >= 2


def test_a_failing_exporter_does_not_break_the_application(lite: storelayer.Database) -> None:
    class Broken:
        @storelayer.hookimpl
        def storelayer_metrics_event(self, event: object) -> None:
            raise RuntimeError("exporter down")

    lite.plugins.register(Broken(), name="broken-exporter")
    try:
        lite.run_in_transaction(add(1))
    finally:
        lite.plugins.unregister("broken-exporter")
    assert count(lite) == 1
