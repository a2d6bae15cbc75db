"""Reads without ORM instances: ``repo.rows.get(...)``, ``.list(...)``, ``.page(...)``,
``.keyset(...)``, ``.stream(...)`` return SQLAlchemy ``Row`` objects (named tuples:
``row.name``, ``row[0]``, ``row._mapping``) with the model's attribute names. Same
filters, ordering checks and statements as the repository; no identity map, no change
tracking, no instance per row - what a read that only shows data needs.

Each read is a plan (``repository._plans``, no I/O); this module drives plans on a
connection by calling ``execute`` (``aio._rows`` awaits it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain, repeat, starmap
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy import Row, Select
from sqlalchemy.engine import Result

from storelayer.repository import _statements as sql
from storelayer.repository._page import KeysetPage, Page
from storelayer.repository._plans import (
    Order,
    Plan,
    plan_count,
    plan_get,
    plan_get_by,
    plan_get_or_raise,
    plan_keyset,
    plan_page,
    plan_rows,
    select_values,
)
from storelayer.repository._query import columns_of
from storelayer.repository._typed import typed_partitions

if TYPE_CHECKING:
    from storelayer.session import Session

T = TypeVar("T")


def run(plan: Plan, execute: Callable[..., Result[Any]]) -> Any:
    """Drive ``plan``, executing each statement it yields."""
    try:
        step = next(plan)
        while True:
            step = plan.send(execute(*step))
    except StopIteration as done:
        return done.value


#: Runs a plan to its value (on some connection).
Runner = Callable[[Plan], Any]
#: Streams a statement's rows ``batch_size`` at a time.
Streamer = Callable[[Select[Any], int], Iterator[Row[Any]]]


def session_runner(session: Session) -> tuple[Runner, Streamer]:
    """Plans run, and streams read, on ``session``'s connection: within its unit of
    work, in its transaction."""

    def batches(stmt: Select[Any], batch_size: int) -> Generator[Iterable[Row[Any]], None, None]:
        sql.check_streamable(session.info)
        connection = session.connection()
        result = connection.execute(stmt, execution_options={"yield_per": batch_size})
        try:
            yield from typed_partitions(result, batch_size)
        finally:
            result.close()

    def stream(stmt: Select[Any], batch_size: int) -> Iterator[Row[Any]]:
        return RowStream.of(batches(stmt, batch_size))

    return (lambda plan: run(plan, session.connection().execute)), stream


class RowStream(chain):  # type: ignore[type-arg]
    """The rows of a stream's fetches, handed on in C (no Python frame a row), with a
    generator's ``close()``: it ends the read and closes its cursor."""

    _batches: Generator[Iterable[Row[Any]], None, None]

    @classmethod
    def of(cls, batches: Generator[Iterable[Row[Any]], None, None]) -> RowStream:
        rows = cast(RowStream, cls.from_iterable(map(_handed_over, batches)))
        rows._batches = batches
        return rows

    def close(self) -> None:
        self._batches.close()
        deque(self, maxlen=0)  # the rest of the fetch in hand; then it ends


def _handed_over(rows: Iterable[Row[Any]]) -> Iterator[Row[Any]]:
    """The rows of a fetch in order, each let go of as it is handed on (as a cursor's
    buffer does); a fetch's list is emptied in place, since the fetcher's generator
    keeps the list it yielded until it fetches again."""
    if type(rows) is not list:
        return iter(rows)
    rows.reverse()
    return starmap(rows.pop, repeat((), len(rows)))


class Rows(Generic[T]):
    """The repository's reads, returning ``Row`` objects instead of ``T`` instances
    (module docstring): ``repo.rows`` in a unit of work, ``db.rows(Model)`` as reads
    of their own."""

    def __init__(self, model: type[T], runner: Runner, streamer: Streamer) -> None:
        self.model = model
        self._cols = columns_of(model)
        self._run = runner
        self._stream = streamer

    def __repr__(self) -> str:
        return f"<Rows of {self.model.__name__}>"

    def get(self, id: Any) -> Row[Any] | None:
        """The row with primary key ``id`` (a tuple for composite keys), or None."""
        return self._run(plan_get(self._cols, id))  # type: ignore[no-any-return]

    def get_or_raise(self, id: Any) -> Row[Any]:
        """Like ``get`` but raises ``NotFound`` naming the model and key."""
        return self._run(plan_get_or_raise(self._cols, id))  # type: ignore[no-any-return]

    def get_by(self, *expressions: Any, **filters: Any) -> Row[Any] | None:
        """The one matching row, None when none does; ``QueryError`` when several do."""
        return self._run(plan_get_by(self._cols, expressions, filters))  # type: ignore[no-any-return]

    def list(
        self,
        *expressions: Any,
        order_by: Order = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> list[Row[Any]]:
        """Rows matching column expressions and ``field__lookup=value`` filters."""
        plan = plan_rows(
            self._cols, expressions, filters, order_by=order_by, limit=limit, offset=offset
        )
        return self._run(plan)  # type: ignore[no-any-return]

    def count(self, *expressions: Any, **filters: Any) -> int:
        """How many rows match."""
        return self._run(plan_count(self._cols, expressions, filters))  # type: ignore[no-any-return]

    def page(
        self,
        page: int = 1,
        per_page: int = 20,
        *expressions: Any,
        order_by: Order = None,
        count: bool = True,
        **filters: Any,
    ) -> Page[Row[Any]]:
        """Offset page ``page`` (from 1), as ``Repository.page``."""
        plan = plan_page(self._cols, page, per_page, expressions, filters, order_by, count)
        return self._run(plan)  # type: ignore[no-any-return]

    def keyset(
        self,
        *expressions: Any,
        after: str | None = None,
        limit: int = 50,
        order_by: Order = None,
        **filters: Any,
    ) -> KeysetPage[Row[Any]]:
        """Cursor pagination, as ``Repository.keyset`` (the cursors are the same)."""
        plan = plan_keyset(self._cols, expressions, filters, after, limit, order_by)
        return self._run(plan)  # type: ignore[no-any-return]

    def stream(
        self, *expressions: Any, batch_size: int = 1000, order_by: Order = None, **filters: Any
    ) -> Iterator[Row[Any]]:
        """Every matching row, ``batch_size`` at a time through a server-side cursor
        where the backend has one: memory stays flat on any table size."""
        stmt = select_values(self._cols, expressions, filters, order_by=order_by)
        return self._stream(stmt, batch_size)
