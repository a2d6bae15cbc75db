"""Async and sync storelayer side by side with the raw async driver.

    uv run python benchmarks/bench_async.py [--backend sqlite,postgresql,mysql] [--gets 2000]

Operations: get-by-id (each its own unit of work, awaited one after another; anchored by
SQLAlchemy's own ``AsyncSession.get`` on storelayer's engine, and storelayer's
``db.rows(Model).get``) and a bulk insert of ``--rows`` rows. Implementations run
interleaved (A B C, A B C ...), the median of ``--repeats`` is reported, and the ratio
is raw async time / implementation time (higher is better). The raw drivers are the
ones storelayer's plugins use: aiosqlite, psycopg 3 (async), aiomysql.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer

SERVERS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_async_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[int]


def rows(n: int) -> list[dict[str, Any]]:
    return [{"name": f"item {i}", "quantity": i % 97} for i in range(n)]


async def raw_connect(url: URL) -> Any:
    """The backend's async driver, connected without SQLAlchemy."""
    if url.get_backend_name() == "sqlite":
        import aiosqlite

        return await aiosqlite.connect(url.database or ":memory:", isolation_level=None)
    if url.get_backend_name() == "postgresql":
        import psycopg

        return await psycopg.AsyncConnection.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        )
    import aiomysql  # type: ignore[import-untyped]

    return await aiomysql.connect(
        host=url.host, port=url.port, user=url.username, db=url.database, autocommit=True
    )


def placeholders(url: URL) -> str:
    return "?" if url.get_backend_name() == "sqlite" else "%s"


async def raw_gets(conn: Any, url: URL, ids: list[int]) -> int:
    sql = f"SELECT id, name, quantity FROM bench_async_item WHERE id = {placeholders(url)}"
    total = 0
    for id_ in ids:
        async with conn.cursor() as cur:
            await cur.execute(sql, (id_,))
            total += (await cur.fetchone())[2]
    return total


async def raw_insert(conn: Any, url: URL, data: list[dict[str, Any]]) -> None:
    p = placeholders(url)
    sql = f"INSERT INTO bench_async_item (name, quantity) VALUES ({p}, {p})"
    params = [(r["name"], r["quantity"]) for r in data]
    if url.get_backend_name() == "sqlite":
        await conn.execute("BEGIN")
        await conn.executemany(sql, params)
        await conn.execute("COMMIT")
        return
    async with conn.cursor() as cur:
        await cur.executemany(sql, params)


async def measure(url: URL, gets: int, n_rows: int, repeats: int) -> dict[str, dict[str, float]]:
    sync_db = storelayer.connect(url)
    async_db = storelayer.connect_async(url)
    raw = await raw_connect(sync_db.backend.normalize_url(url))
    Base.metadata.drop_all(sync_db.engine)
    Base.metadata.create_all(sync_db.engine)
    with sync_db.session() as s:
        s.repository(Item).bulk_create(rows(gets))
    ids = list(range(1, gets + 1))

    def sync_gets() -> None:
        for id_ in ids:
            with sync_db.read_session(autocommit=True) as s:
                s.repository(Item).get(id_)

    async def async_gets() -> None:
        for id_ in ids:
            async with async_db.read_session(autocommit=True) as s:
                await s.repository(Item).get(id_)

    plain_sessions = async_sessionmaker(async_db.engine, expire_on_commit=False)

    async def sqlalchemy_gets() -> None:  # SQLAlchemy's own AsyncSession, same engine
        for id_ in ids:
            async with plain_sessions() as s:
                await s.get(Item, id_)

    async def async_row_gets() -> None:  # docs/performance.md's recommended read
        reader = async_db.rows(Item)
        for id_ in ids:
            await reader.get(id_)

    async def async_insert() -> None:
        async with async_db.session() as s:
            await s.repository(Item).bulk_create(rows(n_rows))

    def sync_insert() -> None:
        with sync_db.session() as s:
            s.repository(Item).bulk_create(rows(n_rows))

    plan: dict[str, dict[str, Callable[[], Awaitable[Any] | Any]]] = {
        "get_by_id": {
            "raw async": lambda: raw_gets(raw, url, ids),
            "sqlalchemy AsyncSession.get": sqlalchemy_gets,
            "storelayer async": async_gets,
            "storelayer async db.rows": async_row_gets,
            "storelayer sync": sync_gets,
        },
        "bulk_insert": {
            "raw async": lambda: raw_insert(raw, url, rows(n_rows)),
            "storelayer async": async_insert,
            "storelayer sync": sync_insert,
        },
    }
    times: dict[str, dict[str, list[float]]] = {op: {k: [] for k in p} for op, p in plan.items()}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        for op, impls in plan.items():
            for name, run in impls.items():
                started = time.perf_counter()
                result = run()
                if asyncio.iscoroutine(result):
                    await result
                times[op][name].append(time.perf_counter() - started)
    await raw.close() if asyncio.iscoroutinefunction(raw.close) else raw.close()
    await async_db.dispose()
    Base.metadata.drop_all(sync_db.engine)
    sync_db.dispose()
    return {op: {k: statistics.median(v[1:]) for k, v in t.items()} for op, t in times.items()}


def scratch_url(
    backend: str, workdir: Path, name: str = "bench_async"
) -> tuple[URL, Callable[[], None]]:
    """A scratch database ``storelayer_<name>`` (a file in ``workdir`` for SQLite) and
    the function that drops it."""
    plugin = storelayer.get_plugin_manager().backends()[backend]
    if backend == "sqlite":
        return plugin.provisioning.embedded_test_url(workdir, name), lambda: None
    server = plugin.normalize_url(make_url(SERVERS[backend]))
    url = plugin.provisioning.create_database(server, f"storelayer_{name}")
    return url, lambda: plugin.provisioning.drop_database(server, f"storelayer_{name}")


def scratch_databases(backends: str, name: str = "bench_async") -> Iterator[tuple[str, URL]]:
    """(backend, URL of a scratch database) for each comma-separated backend in turn,
    each database dropped once the next is asked for."""
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends.split(","):
            url, drop = scratch_url(backend, Path(tmp), name)
            try:
                yield backend, url
            finally:
                drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgresql,mysql")
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for backend, url in scratch_databases(args.backend):
        result = asyncio.run(measure(url, args.gets, args.rows, args.repeats))
        for op, medians in result.items():
            raw = medians["raw async"]
            print(f"\n{backend} {op} (ratio: raw async time / time)\n")
            print("| implementation | median | ratio |\n|---|---|---|")
            for name, seconds in medians.items():
                print(f"| {name} | {seconds:.3f} s | {raw / seconds:.2f}x |")


if __name__ == "__main__":
    main()
