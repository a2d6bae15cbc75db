"""Isolation as part of the unit of work, on every backend: ``session(isolation=...)``
runs at the level the backend maps the portable name to, and ``run_in_transaction``
with default arguments makes a naive read-then-increment exact under contention
(200 async tasks x 5 units on a pool of 10; 8 threads in sync)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import AsyncSession, Backend, ConfigurationError, Session
from storelayer._engines import ISOLATION_LEVELS
from storelayer.testing.suite.test_concurrency import run_threads

TASKS, UNITS = 200, 5
THREADS = 8


class Base(DeclarativeBase):
    pass


class Tally(Base):
    __tablename__ = "isolation_tally"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


@pytest.fixture
def tally_url(database_url: URL, backend: Backend) -> Iterator[URL]:
    """``database_url`` with a tally at 0 under key 1."""
    with storelayer.connect(database_url, backend=backend.name) as setup:
        Base.metadata.drop_all(setup.engine)
        Base.metadata.create_all(setup.engine)
        with setup.session() as s:
            s.add(Tally(id=1, value=0))
    yield database_url
    with storelayer.connect(database_url, backend=backend.name) as setup:
        Base.metadata.drop_all(setup.engine)


def tally(url: URL, backend: Backend) -> int:
    with storelayer.connect(url, backend=backend.name) as db, db.read_session() as s:
        return s.repository(Tally).get_or_raise(1).value


def naive_increment(s: Session) -> None:
    row = s.repository(Tally).get_or_raise(1)  # no for_update: isolation must do it
    row.value += 1


async def anaive_increment(s: AsyncSession) -> None:
    row = await s.repository(Tally).get_or_raise(1)
    row.value += 1


async def async_hammer(url: URL, backend: Backend) -> dict[str, float]:
    async with storelayer.connect_async(
        url, backend=backend.name, pool_size=10, max_overflow=0, pool_timeout=600
    ) as db:

        async def task() -> None:
            for _ in range(UNITS):
                await db.run_in_transaction(anaive_increment)

        await asyncio.gather(*(task() for _ in range(TASKS)))
        return db.metrics()["engines"]["primary"]  # type: ignore[no-any-return]


def test_200_tasks_of_naive_increments_end_at_exactly_1000(
    tally_url: URL, backend: Backend
) -> None:
    if not backend.async_driver:
        pytest.skip(f"backend {backend.name!r} declares no async_driver")
    started = time.monotonic()
    metrics = asyncio.run(async_hammer(tally_url, backend))
    print(  # the figures in docs/performance.md come from here (pytest -s)
        f"\n{backend.name} async {TASKS}x{UNITS}: {time.monotonic() - started:.1f} s, "
        f"{metrics['retries']} retries"
    )
    assert tally(tally_url, backend) == TASKS * UNITS


def test_8_threads_of_naive_increments_end_at_exactly_1000(
    tally_url: URL, backend: Backend
) -> None:
    per = TASKS * UNITS // THREADS
    with storelayer.connect(tally_url, backend=backend.name, pool_timeout=600) as db:
        started = time.monotonic()
        run_threads(THREADS, lambda: [db.run_in_transaction(naive_increment) for _ in range(per)])
        retries = db.metrics()["engines"]["primary"]["retries"]
    took = time.monotonic() - started
    print(f"\n{backend.name} sync {THREADS} threads: {took:.1f} s, {retries} retries")
    assert tally(tally_url, backend) == THREADS * per


#: The level of the transaction in progress, where the session's variable does not tell
#: (MySQL/MariaDB set it per transaction; InnoDB lists its transactions, refreshed every
#: 0.1 s, once they touched a table).
TRANSACTION_LEVEL_SQL = {
    "mysql": "SELECT trx_isolation_level FROM information_schema.innodb_trx "
    "WHERE trx_mysql_thread_id = CONNECTION_ID()",
}


def transaction_level(s: Session, backend: Backend) -> str:
    """The isolation level of the unit ``s`` is in, as the server runs it."""
    probe = TRANSACTION_LEVEL_SQL.get(backend.dialect)
    if probe is None:
        return s.connection().get_isolation_level()
    s.execute(select(Tally.value)).all()  # the transaction touches a table
    for _ in range(50):
        time.sleep(0.15)  # past the refresh of the list, which may show the last unit
        level = s.execute(text(probe)).scalar()
        if level is not None:
            return str(level)
    raise AssertionError("the server never listed the unit's transaction")


@pytest.mark.parametrize("isolation", ISOLATION_LEVELS)
def test_a_unit_runs_at_the_level_it_asked_for_and_the_next_at_the_default(
    tally_url: URL, backend: Backend, isolation: str
) -> None:
    with storelayer.connect(tally_url, backend=backend.name, pool_size=1) as db:
        with db.session() as s:
            default = transaction_level(s, backend)
        with db.session(isolation=isolation) as s:
            level = transaction_level(s, backend)
        with db.session() as s:
            after = transaction_level(s, backend)
    assert level == (backend.ops.isolation_levels[isolation] or default)
    assert after == default


def test_async_units_run_at_the_level_they_asked_for(tally_url: URL, backend: Backend) -> None:
    if not backend.async_driver:
        pytest.skip(f"backend {backend.name!r} declares no async_driver")

    async def levels() -> tuple[str, str]:
        async with storelayer.connect_async(tally_url, backend=backend.name) as db:
            async with db.session(isolation="serializable") as s:
                asked = await s.run_sync(transaction_level, backend)
            in_unit = await db.run_in_transaction(lambda s: s.run_sync(transaction_level, backend))
            return asked, in_unit

    expected = backend.ops.isolation_levels["serializable"]
    asked, in_unit = asyncio.run(levels())
    assert asked == in_unit
    if expected is not None:
        assert asked == expected


@pytest.mark.parametrize("isolation", ["snapshot", "SERIALIZABLE", ""])
def test_an_unknown_level_is_refused_with_the_portable_names(
    database_url: URL, backend: Backend, isolation: str
) -> None:
    with (
        storelayer.connect(database_url, backend=backend.name) as db,
        pytest.raises(ConfigurationError, match="read_committed, repeatable_read, serializable"),
        db.session(isolation=isolation),
    ):
        pass
