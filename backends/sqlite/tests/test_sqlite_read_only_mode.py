"""PRAGMA query_only stays on a pooled connection between read units and is switched
with the BEGIN: whatever unit used the connection before, a read unit cannot write, a
read-write unit can, and a read_session() reads one snapshot. Each scenario runs on
the sync and the async API, on a file and on the one connection of ``:memory:``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import storelayer
from storelayer import ReadOnlySession
from storelayer_sqlite.migration_lock import SQLiteMigrations

INSERT = "INSERT INTO mode_items (name) VALUES ('x')"
COUNT = "SELECT COUNT(*) FROM mode_items"


async def aw(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@asynccontextmanager
async def unit(manager: Any) -> AsyncIterator[Any]:
    if isinstance(manager, AbstractContextManager):
        with manager as value:
            yield value
    else:
        async with manager as value:
            yield value


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["file", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "sqlite://" if request.param == "memory" else f"sqlite:///{tmp_path}/mode.db"


@pytest.fixture
async def db(api: str, url: str) -> AsyncIterator[Any]:
    # One pooled connection (as :memory: has): every unit below runs on it.
    connect = storelayer.connect_async if api == "async" else storelayer.connect
    database = connect(url, pool_size=1, max_overflow=0)
    async with unit(database.session()) as s:
        await aw(s.execute(text("CREATE TABLE mode_items (id INTEGER PRIMARY KEY, name TEXT)")))
    yield database
    await aw(database.dispose())


async def write(db: Any, **read: Any) -> None:
    session = db.read_session(**read) if read else db.session()
    async with unit(session) as s:
        await aw(s.execute(text(INSERT)))


async def count(db: Any) -> int:
    async with unit(db.read_session()) as s:
        return int((await aw(s.execute(text(COUNT)))).scalar_one())


@pytest.mark.parametrize("autocommit", [False, True])
async def test_a_read_unit_cannot_write_after_a_write_unit(db: Any, autocommit: bool) -> None:
    await write(db)  # the connection is read-write now
    with pytest.raises(ReadOnlySession):
        await write(db, autocommit=autocommit)
    await write(db)
    with pytest.raises(ReadOnlySession):
        await write(db, autocommit=autocommit)
    assert await count(db) == 2


@pytest.mark.parametrize("autocommit", [False, True])
async def test_a_write_unit_can_write_after_read_units(db: Any, autocommit: bool) -> None:
    for _ in range(2):
        async with unit(db.read_session(autocommit=autocommit)) as s:
            await aw(s.execute(text(COUNT)))
        await write(db)
    with pytest.raises(ReadOnlySession):
        await write(db, autocommit=autocommit)  # a failed read unit leaves it read-only
    await write(db)
    assert await count(db) == 3


async def test_a_plain_engine_transaction_can_write_after_a_read_unit(db: Any) -> None:
    await count(db)
    async with unit(db.engine.begin()) as connection:
        await aw(connection.execute(text(INSERT)))
    assert await count(db) == 1


@pytest.mark.parametrize("url", ["file"], indirect=True)  # :memory: has no other writer
async def test_a_read_session_reads_one_snapshot(db: Any, url: str) -> None:
    other = storelayer.connect(url)
    try:
        await write(db)  # the connection is read-write before the read unit begins
        async with unit(db.read_session()) as s:
            before = (await aw(s.execute(text(COUNT)))).scalar_one()
            with other.session() as w:
                w.execute(text(INSERT))
            assert (await aw(s.execute(text(COUNT)))).scalar_one() == before == 1
        assert await count(db) == 2
    finally:
        other.dispose()


def test_the_migration_lock_finds_the_write_lock_free_after_a_read_unit(
    tmp_path: Path,
) -> None:
    db = storelayer.connect(f"sqlite:///{tmp_path}/lock.db", pool_size=1, max_overflow=0)
    try:
        with db.read_session() as s:
            s.execute(text("SELECT 1"))
        said: list[str] = []
        with (
            db.engine.connect() as connection,
            SQLiteMigrations().lock(connection, "test", 5.0, said.append),
        ):
            connection.execute(text("CREATE TABLE locked (id INTEGER PRIMARY KEY)"))
        assert said == []  # no "waiting for the lock": the probe's BEGIN IMMEDIATE ran
        with db.session() as s:
            s.execute(text("INSERT INTO locked VALUES (1)"))
    finally:
        db.dispose()


def test_a_driver_error_in_the_switch_is_raised_as_sqlalchemy_raises_it(tmp_path: Path) -> None:
    """The read-only switch runs on the raw DBAPI connection in a ``begin`` event, where
    SQLAlchemy wraps nothing: its driver errors are wrapped as SQLAlchemy's, so that a
    lost server is a disconnect the routing can tell (a replica ejected), not a bare
    driver error."""
    import sqlite3

    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc

    from storelayer.backend.driver_errors import driver_errors_wrapped

    engine = create_engine(f"sqlite:///{tmp_path / 'wrapped.db'}")
    with engine.connect() as conn:
        wrapped = driver_errors_wrapped(conn, "the switch")
        with pytest.raises(sa_exc.OperationalError) as caught, wrapped:
            conn.connection.dbapi_connection.execute("SELEC 1")
        assert isinstance(caught.value.orig, sqlite3.Error)
        assert not caught.value.connection_invalidated and not conn.invalidated
    engine.dispose()
