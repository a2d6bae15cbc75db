"""``repo.rows`` of the async repository: the same read plans
(``storelayer.repository._plans``) as the sync ``Rows``, driven by a loop that awaits
each statement on the unit of work's connection (no greenlet bridge per call)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.engine import Result

from storelayer.repository import _plans as plans
from storelayer.repository import _statements as sql
from storelayer.repository._page import KeysetPage, Page
from storelayer.repository._plans import Order, Plan
from storelayer.repository._query import columns_of
from storelayer.repository._rows import Rows

if TYPE_CHECKING:
    from storelayer.aio._session import AsyncSession

T = TypeVar("T")


#: Runs a plan to its value, awaiting each statement.
AsyncRunner = Callable[[Plan], Awaitable[Any]]
#: Streams a statement's rows ``batch_size`` at a time.
AsyncStreamer = Callable[[Select[Any], int], AsyncIterator[Row[Any]]]


async def arun(plan: Plan, execute: Callable[..., Awaitable[Result[Any]]]) -> Any:
    """Drive ``plan``, awaiting each statement it yields (twin of ``run``)."""
    try:
        step = next(plan)
        while True:
            step = plan.send(await execute(*step))
    except StopIteration as done:
        return done.value


def session_runner(session: AsyncSession) -> tuple[AsyncRunner, AsyncStreamer]:
    """Plans run, and streams read, on ``session``'s connection."""

    async def runner(plan: Plan) -> Any:
        return await arun(plan, (await session.connection()).execute)

    async def stream(stmt: Select[Any], batch_size: int) -> AsyncIterator[Row[Any]]:
        sql.check_streamable(session.info)
        connection = await session.connection()
        result = await connection.stream(stmt, execution_options={"yield_per": batch_size})
        try:
            async for batch in result.partitions():  # a list per fetch: less work per row
                for row in batch:
                    yield row
        finally:
            await result.close()

    return runner, stream


class AsyncRows(Generic[T]):
    """Awaitable twin of :class:`storelayer.repository._rows.Rows`."""

    def __init__(self, model: type[T], runner: AsyncRunner, streamer: AsyncStreamer) -> None:
        self.model = model
        self._cols = columns_of(model)
        self._run = runner
        self._stream = streamer

    def __repr__(self) -> str:
        return f"<AsyncRows of {self.model.__name__}>"

    async def get(self, id: Any) -> Row[Any] | None:
        return await self._run(plans.plan_get(self._cols, id))  # type: ignore[no-any-return]

    async def get_or_raise(self, id: Any) -> Row[Any]:
        return await self._run(plans.plan_get_or_raise(self._cols, id))  # type: ignore[no-any-return]

    async def get_by(self, *expressions: Any, **filters: Any) -> Row[Any] | None:
        plan = plans.plan_get_by(self._cols, expressions, filters)
        return await self._run(plan)  # type: ignore[no-any-return]

    async def list(
        self,
        *expressions: Any,
        order_by: Order = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> list[Row[Any]]:
        plan = plans.plan_rows(
            self._cols, expressions, filters, order_by=order_by, limit=limit, offset=offset
        )
        return await self._run(plan)  # type: ignore[no-any-return]

    async def count(self, *expressions: Any, **filters: Any) -> int:
        return await self._run(plans.plan_count(self._cols, expressions, filters))  # type: ignore[no-any-return]

    async def page(
        self,
        page: int = 1,
        per_page: int = 20,
        *expressions: Any,
        order_by: Order = None,
        count: bool = True,
        **filters: Any,
    ) -> Page[Row[Any]]:
        plan = plans.plan_page(self._cols, page, per_page, expressions, filters, order_by, count)
        return await self._run(plan)  # type: ignore[no-any-return]

    async def keyset(
        self,
        *expressions: Any,
        after: str | None = None,
        limit: int = 50,
        order_by: Order = None,
        **filters: Any,
    ) -> KeysetPage[Row[Any]]:
        plan = plans.plan_keyset(self._cols, expressions, filters, after, limit, order_by)
        return await self._run(plan)  # type: ignore[no-any-return]

    def stream(
        self, *expressions: Any, batch_size: int = 1000, order_by: Order = None, **filters: Any
    ) -> AsyncIterator[Row[Any]]:
        """Every matching row, ``batch_size`` at a time through a server-side cursor
        where the backend has one: ``async for row in repo.rows.stream(): ...``."""
        stmt = plans.select_values(self._cols, expressions, filters, order_by=order_by)
        return self._stream(stmt, batch_size)


for _name, _method in list(vars(AsyncRows).items()):
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(Rows, _name).__doc__
