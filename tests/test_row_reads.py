"""``repo.rows`` returns what the instance reads return, as rows: the same values in
the same order, the same pages and cursors, the same errors - on every backend and in
both API modes."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Numeric, String, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Backend, NotFound, QueryError


class Base(DeclarativeBase):
    pass


class Gadget(Base):
    __tablename__ = "row_read_gadgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column("label_text", String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    made: Mapped[dt.date]


FIELDS = ("id", "label", "kind", "price", "made")
ROWS = [
    {
        "id": i,
        "label": f"g{i:03}",
        "kind": "ab"[i % 2],
        "price": Decimal(i) / 4,
        "made": dt.date(2024, 1, 1) + dt.timedelta(days=i % 7),
    }
    for i in range(1, 60)
]


def values(item: Any) -> tuple[Any, ...] | None:
    return None if item is None else tuple(getattr(item, f) for f in FIELDS)


async def aw(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def reads(repo: Any) -> dict[str, Any]:
    """Every read, through ``repo`` (a repository or its ``rows``), as plain values."""
    first = await aw(repo.keyset(limit=7, order_by=["-made", "label"], kind="a"))
    second = await aw(
        repo.keyset(after=first.next_cursor, limit=7, order_by=["-made", "label"], kind="a")
    )
    page = await aw(repo.page(2, 10, order_by="-price", price__gte=Decimal("2.5")))
    out: dict[str, Any] = {
        "get": values(await aw(repo.get(5))),
        "get missing": values(await aw(repo.get(999))),
        "get_by": values(await aw(repo.get_by(label="g007"))),
        "list": [
            values(r) for r in await aw(repo.list(kind="b", order_by="-label", limit=5, offset=2))
        ],
        "count": await aw(repo.count(kind="a", made__gte=dt.date(2024, 1, 3))),
        "page": ([values(r) for r in page.items], page.total, page.pages, page.has_next),
        "keyset": [values(r) for r in first.items + second.items],
        "cursor": first.next_cursor,
    }
    for name, call in {
        "get_or_raise": lambda: repo.get_or_raise(999),
        "get_by several": lambda: repo.get_by(kind="a"),
        "unknown filter": lambda: repo.list(colour="red"),
    }.items():
        try:
            await aw(call())
            out[name] = None
        except storelayer.StorelayerError as error:
            out[name] = type(error)
            out[f"{name} message"] = str(error)
    return out


async def both(db: Any, streaming: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    async def in_unit(session: Any, reader: Any) -> dict[str, Any]:
        got = await reads(reader(session.repository(Gadget)))
        stream = reader(session.repository(Gadget)).stream(batch_size=8, order_by="id")
        got["stream"] = (
            [values(r) async for r in stream] if streaming else [values(r) for r in stream]
        )
        return got

    found = []
    for reader in (lambda repo: repo, lambda repo: repo.rows):
        manager = db.read_session()
        if streaming:
            async with manager as s:
                found.append(await in_unit(s, reader))
        else:
            with manager as s:
                found.append(await in_unit(s, reader))
    return found[0], found[1]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rows_read_what_instances_read(mode: str, database_url: URL, backend: Backend) -> None:
    engine = create_engine(backend.normalize_url(database_url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    opener = storelayer.connect if mode == "sync" else storelayer.connect_async

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        db = opener(database_url, backend=backend.name)
        try:
            if mode == "sync":
                with db.session() as s:
                    s.repository(Gadget).bulk_create(ROWS)
            else:
                async with db.session() as s:
                    await s.repository(Gadget).bulk_create(ROWS)
            instances, rows = await both(db, streaming=mode == "async")
            own = await reads(db.rows(Gadget))  # each read a unit of its own
            with pytest.raises(QueryError, match="read_session"):
                db.rows(Gadget).stream()
            return instances, rows, own
        finally:
            await aw(db.dispose())

    instances, rows, own = asyncio.run(go())
    assert rows == instances
    assert own == {k: v for k, v in instances.items() if k != "stream"}
    assert rows["get"] == tuple(ROWS[4][f] for f in FIELDS)
    assert len(rows["stream"]) == len(ROWS)
    assert len(rows["keyset"]) == 14 and rows["cursor"]
    assert rows["get_or_raise"] is NotFound
    assert rows["get_by several"] is QueryError
    several = rows["get_by several message"]
    assert "Gadget" in several and "kind" in several and "'a'" not in several  # no value
    assert rows["unknown filter"] is QueryError


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_rows_stream_closed_early_leaves_its_unit_usable(
    mode: str, database_url: URL, backend: Backend
) -> None:
    """Closing a stream after a few rows ends its read: the same unit then counts and
    writes, and what it wrote is committed."""
    engine = create_engine(backend.normalize_url(database_url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    opener = storelayer.connect if mode == "sync" else storelayer.connect_async

    async def go() -> tuple[list[Any], int, Any]:
        db = opener(database_url, backend=backend.name)
        try:
            async def in_unit(s: Any) -> tuple[list[Any], int]:
                repo = s.repository(Gadget)
                await aw(repo.bulk_create(ROWS))
                stream = repo.rows.stream(batch_size=4, order_by="id")
                if mode == "sync":
                    first = [next(stream).label for _ in range(6)]
                    stream.close()
                    with pytest.raises(StopIteration):
                        next(stream)
                else:
                    first = [(await anext(stream)).label for _ in range(6)]
                    await stream.aclose()
                    with pytest.raises(StopAsyncIteration):
                        await anext(stream)
                count = await aw(repo.count())
                await aw(repo.update(await aw(repo.get_or_raise(1)), kind="z"))
                return first, count

            if mode == "sync":
                with db.session() as s:
                    first, count = await in_unit(s)
            else:
                async with db.session() as s:
                    first, count = await in_unit(s)
            return first, count, values(await aw(db.rows(Gadget).get(1)))
        finally:
            await aw(db.dispose())

    first, count, written = asyncio.run(go())
    assert first == [f"g{i:03}" for i in range(1, 7)]
    assert count == len(ROWS)
    assert written is not None and written[2] == "z"


def test_a_rows_stream_gives_the_rows_a_list_gives(database_url: URL, backend: Backend) -> None:
    """Fetch by fetch (SQLite types its decimals a column at a time after the first),
    a stream's rows are the rows a list reads: same values, keys and class."""
    engine = create_engine(backend.normalize_url(database_url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    db = storelayer.connect(database_url, backend=backend.name)
    try:
        with db.session() as s:
            s.repository(Gadget).bulk_create(ROWS)
        with db.read_session() as s:
            rows = s.repository(Gadget).rows
            streamed = list(rows.stream(batch_size=5, order_by="id"))
            listed = rows.list(order_by="id")
    finally:
        db.dispose()
    assert len(streamed) == len(ROWS)
    assert [tuple(r) for r in streamed] == [tuple(r) for r in listed]
    assert [dict(r._mapping) for r in streamed] == [dict(r._mapping) for r in listed]
    assert {type(r) for r in streamed} == {type(listed[0])}
    assert [type(r.price) for r in streamed] == [Decimal] * len(ROWS)
