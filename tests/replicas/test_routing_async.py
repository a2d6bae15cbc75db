"""The async twin routes with the same decisions: replicas for reads, tokens, auto mode,
failover, counters (on SQLite through aiosqlite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _routing_clock import FAST, WINDOW, age_tokens
from sqlalchemy import event, exc, text

import storelayer
from storelayer.routing import session_target, write_token
from storelayer_sqlite.replication import reader_url


async def count_and_target(s: storelayer.AsyncSession) -> tuple[int, str | None]:
    return (await s.execute(text("SELECT count(*) FROM items"))).scalar_one(), session_target(s)


async def scenario(path: Path) -> None:
    db = storelayer.connect_async(
        f"sqlite+aiosqlite:///{path}", replicas=[reader_url(path)], routing=FAST
    )
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT)"))
            await s.execute(text("INSERT INTO items (note) VALUES ('a')"))
        token = db.last_write_token()
        assert token is not None and token == write_token(s)
        assert list(db.engines()) == ["primary", "replica:0"]

        async with db.read_session() as s:
            assert await count_and_target(s) == (1, "replica:0")
        async with db.read_session(token=token) as s:  # fresh, position-less: primary
            assert await count_and_target(s) == (1, "primary")
        age_tokens(db, WINDOW + 1)
        async with db.read_session(token=token) as s:
            assert await count_and_target(s) == (1, "replica:0")

        async with db.session(using="auto") as s:
            assert await count_and_target(s) == (1, "replica:0")
            await s.execute(text("INSERT INTO items (note) VALUES ('b')"))
            assert await count_and_target(s) == (2, "primary")

        once = iter([True])

        def die_once(conn: object, cursor: object, statement: str, *args: object) -> None:
            if "count(*)" in statement and next(once, False):
                raise exc.OperationalError(
                    statement, {}, Exception("gone"), connection_invalidated=True
                )

        event.listen(db.engines()["replica:0"].sync_engine, "before_cursor_execute", die_once)
        async with db.read_session() as s:
            assert await count_and_target(s) == (2, "primary")

        stats = db.routing_stats()
        assert stats.reads == {"replica:0": 4, "primary": 2}
        assert stats.fallbacks == {"token_window": 1, "replica_failed": 1}
        assert stats.ejections == {"replica:0": 1}
    finally:
        await db.dispose()


def test_async_database_routes_like_the_sync_one(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path / "app.db"))
