"""Filtered reads keep one statement per shape of their filters (repository._kept):
whatever the filters, and however often a shape comes back with other values, the
repository's and ``rows``' ``list`` and ``count`` return what the general path returns
(the statement built each time, which a positional expression asks for) - the same ids
in the same order, the same counts, the same error classes - on every backend and in
both API modes. Hypothesis draws the filters, derandomized in CI."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Numeric, String, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Backend


class Base(DeclarativeBase):
    pass


class Part(Base):
    __tablename__ = "row_shape_parts"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column("code_text", String(20))
    size: Mapped[int | None]
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    made: Mapped[dt.date]


PARTS = [
    {
        "id": i,
        "code": f"{'abc'[i % 3]}{i:02}",
        "size": None if i % 5 == 0 else i % 7,
        "price": Decimal(i) / 4,
        "made": dt.date(2024, 1, 1) + dt.timedelta(days=i % 9),
    }
    for i in range(1, 41)
]
SIZES = st.integers(-1, 8)
PRICES = st.decimals(0, 11, places=2)
DATES = st.dates(dt.date(2023, 12, 30), dt.date(2024, 1, 11))
CODES = st.sampled_from(["a01", "b02", "c03", "x", "%", "a%", "%3", "_0%"])
#: A filter key and the values it may take (ill-typed ones included: both paths must
#: refuse them alike).
FILTERS: dict[str, Any] = {
    "size": st.one_of(st.none(), SIZES),
    "size__ne": st.one_of(st.none(), SIZES),
    "size__gte": SIZES,
    "size__lt": SIZES,
    "size__in": st.lists(SIZES, max_size=4),
    "size__not_in": st.lists(SIZES, max_size=3),
    "size__isnull": st.one_of(st.booleans(), st.just("yes")),
    "size__between": st.one_of(st.tuples(SIZES, SIZES), st.just(3)),
    "price__gt": PRICES,
    "price__lte": PRICES,
    "made__gte": DATES,
    "made__between": st.tuples(DATES, DATES),
    "code": CODES,
    "code__like": CODES,
    "code__ilike": st.sampled_from(["A%", "%b%", "C1%"]),
    "code__in": st.lists(CODES, max_size=3),
    "id__in": st.just(5),
    "colour": st.just("red"),
}
SHAPES = st.lists(
    st.dictionaries(st.sampled_from(sorted(FILTERS)), st.just(None), max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({k: FILTERS[k] for k in keys})
    ),
    min_size=1,
    max_size=6,
)
ORDERS = st.sampled_from([None, "id", "-price,id", ["made", "-id"]])
#: Seeded, and without a deadline, by the profile the root conftest loads.
HYPOTHESIS = settings(max_examples=int(os.environ.get("STORELAYER_SHAPE_EXAMPLES", "30")))


async def aw(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def outcome(call: Any) -> Any:
    """The ids read, the count, or the error class."""
    try:
        found = await aw(call())
    except storelayer.StorelayerError as error:
        return type(error)
    return found if isinstance(found, int) else [row.id for row in found]


#: A condition every row meets: a positional expression takes the general path.
EVERY = Part.id.is_not(None)


async def readings(db: Any, mode: str, filters: dict[str, Any], order: Any) -> dict[str, Any]:
    """Each read through the repository (in a unit), ``rows`` (a read of its own) and
    the general path, as ``{(path, read): outcome}``."""
    got: dict[str, Any] = {}
    ordered = {"order_by": order or "id"}
    limited = {"order_by": order or "id", "limit": 7, "offset": 2}

    async def each(path: str, reader: Any, *general: Any) -> None:
        got[path, "list"] = await outcome(lambda: reader.list(*general, **ordered, **filters))
        got[path, "page"] = await outcome(lambda: reader.list(*general, **limited, **filters))
        got[path, "count"] = await outcome(lambda: reader.count(*general, **filters))

    if mode == "sync":
        with db.read_session() as s:
            await each("repository", s.repository(Part))
            await each("general", s.repository(Part), EVERY)
    else:
        async with db.read_session() as s:
            await each("repository", s.repository(Part))
            await each("general", s.repository(Part), EVERY)
    await each("rows", db.rows(Part))
    return got


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rows_reads_of_a_kept_shape_read_what_the_general_path_reads(
    mode: str, database_url: URL, backend: Backend
) -> None:
    engine = create_engine(backend.normalize_url(database_url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    opener = storelayer.connect if mode == "sync" else storelayer.connect_async
    db = opener(database_url, backend=backend.name)
    loop = asyncio.new_event_loop()
    try:
        if mode == "sync":
            with db.session() as s:
                s.repository(Part).bulk_create(PARTS)
        else:
            loop.run_until_complete(_fill(db))

        @HYPOTHESIS
        @given(shapes=SHAPES, order=ORDERS)
        def check(shapes: list[dict[str, Any]], order: Any) -> None:
            for filters in shapes:  # a shape's second time reads through the kept statement
                for _ in range(2):
                    got = loop.run_until_complete(readings(db, mode, filters, order))
                    for read in ("list", "page", "count"):
                        general = got["general", read]
                        assert got["repository", read] == general, (read, sorted(filters))
                        assert got["rows", read] == general, (read, sorted(filters))

        check()
    finally:
        loop.run_until_complete(aw(db.dispose()))
        loop.close()


async def _fill(db: Any) -> None:
    async with db.session() as s:
        await s.repository(Part).bulk_create(PARTS)
