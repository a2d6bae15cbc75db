"""``stream()``: every row once, in constant memory, and a stream closed early leaves
its unit of work usable."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from storelayer.database import Database
from storelayer.testing.suite.fixtures import seed_users, usernames
from storelayer.testing.suite.models import ConformanceEvent, ConformanceUser

#: Rows in the large-table test.
LARGE = 100_000
#: The stream's peak memory must stay under this share of a materialized list's.
STREAM_MEMORY_SHARE = 0.25


def add_events(database: Database, count: int) -> None:
    with database.session() as s:
        s.repository(ConformanceEvent).bulk_create(
            {"seq": i, "payload": f"event-{i:06d}-padding-to-make-rows-wider"} for i in range(count)
        )


def traced_peak(action: Callable[[], object]) -> int:
    """Bytes allocated at the peak of ``action`` beyond what was live before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_stream_yields_every_matching_row_once_in_order(database: Database) -> None:
    seed_users(database, 250)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        streamed = usernames(list(users.stream(batch_size=7, order_by="-score", score__gt=10)))
        listed = usernames(users.list(order_by="-score", score__gt=10))
    assert streamed == listed
    assert len(streamed) == 240


def test_stream_of_an_empty_table(database: Database) -> None:
    with database.read_session() as s:
        assert list(s.repository(ConformanceUser).stream()) == []


def test_stream_closed_early_leaves_the_session_usable(database: Database) -> None:
    seed_users(database, 3000)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        stream = users.stream(batch_size=100, order_by="id")
        first = [next(stream).username for _ in range(5)]
        stream.close()
        for user in users.stream(batch_size=100, order_by="id"):
            if user.username == "user00010":
                break
        assert users.count() == 3000
        users.update(users.get_or_raise(1), full_name="written after the streams")
    assert first == [f"user{i:05d}" for i in range(1, 6)]
    with database.read_session() as s:
        user = s.repository(ConformanceUser).get_or_raise(1)
        assert user.full_name == "written after the streams"


def test_stream_of_100k_rows_yields_each_once_in_flat_memory(database: Database) -> None:
    add_events(database, LARGE)
    seen = bytearray(LARGE)  # allocated before measuring: one byte per expected row

    def stream_all() -> None:
        with database.read_session() as s:
            for event in s.repository(ConformanceEvent).stream(batch_size=1000):
                seen[event.seq] += 1

    def list_all() -> None:
        with database.read_session() as s:
            rows = s.repository(ConformanceEvent).list()
            assert len(rows) == LARGE

    stream_peak = traced_peak(stream_all)
    assert seen == bytes([1]) * LARGE, "a row was skipped or served twice"
    list_peak = traced_peak(list_all)
    assert stream_peak < list_peak * STREAM_MEMORY_SHARE, (
        f"stream() peaked at {stream_peak / 1e6:.1f} MB, a full list() at "
        f"{list_peak / 1e6:.1f} MB: the rows were buffered, not streamed"
    )
