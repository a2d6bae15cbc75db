"""200 concurrent tasks on a pool of 10, through the async API on every backend: a
mixed read/write workload completes with no error and no lost update."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import String
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import AsyncSession, Backend

TASKS = 200


class Base(DeclarativeBase):
    pass


class Counter(Base):
    __tablename__ = "async_workload_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Note(Base):
    __tablename__ = "async_workload_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[int] = mapped_column(unique=True)
    text: Mapped[str] = mapped_column(String(40))


async def increment(s: AsyncSession) -> None:
    counter = await s.repository(Counter).get_or_raise(1, for_update=True)
    counter.value += 1


async def task(db: storelayer.AsyncDatabase, n: int) -> None:
    if n % 2:  # half write: a note and an increment, retried as a whole
        async def write(s: AsyncSession) -> None:
            await s.repository(Note).create(task=n, text=f"note {n} 🎉")
            await increment(s)

        await db.run_in_transaction(write)
    else:  # half read
        async with db.read_session() as s:
            notes = s.repository(Note)
            await notes.count()
            await notes.list(order_by="-id", limit=5)


async def workload(url: URL, backend: Backend) -> tuple[int, int, dict[str, int]]:
    async with storelayer.connect_async(
        url, backend=backend.name, pool_size=10, max_overflow=0, pool_timeout=60
    ) as db:
        async with db.session() as s:
            await s.repository(Counter).create(id=1, value=0)
        await asyncio.gather(*(task(db, n) for n in range(TASKS)))
        async with db.read_session() as s:
            value = (await s.repository(Counter).get_or_raise(1)).value
            notes = await s.repository(Note).count()
        return value, notes, {"pool_size": db.engine.pool.size()}  # type: ignore[attr-defined]


def test_200_tasks_on_a_pool_of_10_lose_nothing(database_url: URL, backend: Backend) -> None:
    if not backend.async_driver:
        pytest.skip(f"backend {backend.name!r} declares no async_driver")
    with storelayer.connect(database_url, backend=backend.name) as setup:
        Base.metadata.drop_all(setup.engine)
        Base.metadata.create_all(setup.engine)
    try:
        value, notes, pool = asyncio.run(workload(database_url, backend))
    finally:
        with storelayer.connect(database_url, backend=backend.name) as setup:
            Base.metadata.drop_all(setup.engine)
    assert pool == {"pool_size": 10}
    assert (value, notes) == (TASKS // 2, TASKS // 2)
