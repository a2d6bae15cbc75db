"""``AsyncRepository[T]``: the same repository, awaitable.

There is one implementation. Each method runs the sync ``Repository`` method inside
SQLAlchemy's greenlet bridge (``AsyncSession.run_sync``), where every database call is
awaited on the async driver — the way SQLAlchemy's own asyncio extension works. Only
``stream`` is written here, because an async iterator cannot cross that bridge; it
shares its statement with the sync one.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

from sqlalchemy import orm

from storelayer._shapes import AttributeDict
from storelayer.aio._rows import AsyncRows, session_runner
from storelayer.errors import QueryError
from storelayer.repository import _statements as sql
from storelayer.repository._page import KeysetPage, Page
from storelayer.repository._query import columns_of
from storelayer.repository._sync import Repository
from storelayer.session import Session

if TYPE_CHECKING:
    from storelayer.aio._session import AsyncSession

T = TypeVar("T")
R = TypeVar("R")

Rows = Iterable[Mapping[str, Any] | T]
Order = str | Sequence[str] | None


class AsyncRepository(Generic[T]):
    """Awaitable CRUD, filters, pagination, bulk writes, upserts and streaming; the
    method names and semantics of :class:`storelayer.repository.Repository`."""

    #: The mapped class; a subclass may fix it with ``model = User``.
    model: type[T]
    #: As ``Repository.savepoint_writes``.
    savepoint_writes: bool = True

    def __init__(self, session: AsyncSession, model: type[T] | None = None) -> None:
        chosen = model if model is not None else getattr(type(self), "model", None)
        if chosen is None:
            raise QueryError(f"{type(self).__name__} needs a model: set `model = ...` on it")
        self.session = session
        self.model = cast("type[T]", chosen)
        self._cols = columns_of(self.model)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.model.__name__}>"

    @property
    def rows(self) -> AsyncRows[T]:
        """The same reads returning ``Row`` objects instead of ``T`` instances,
        awaited on the unit's connection without the greenlet bridge."""
        return AsyncRows(self.model, *session_runner(self.session))

    async def _run(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        def call(sync_session: orm.Session, /) -> R:
            repository = Repository(cast(Session, sync_session), self.model)
            repository.savepoint_writes = self.savepoint_writes
            return method(repository, *args, **kwargs)

        return await self.session.run_sync(call)

    async def get(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T | None:
        return await self._run(Repository.get, id, for_update=for_update, options=options)

    async def get_or_raise(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T:
        return await self._run(
            Repository.get_or_raise, id, for_update=for_update, options=options
        )

    async def get_by_id(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T | None:
        return await self.get(id, for_update=for_update, options=options)

    async def get_by_id_or_raise(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T:
        return await self.get_or_raise(id, for_update=for_update, options=options)

    async def get_by(
        self, *expressions: Any, options: Sequence[Any] = (), **filters: Any
    ) -> T | None:
        return await self._run(Repository.get_by, *expressions, options=options, **filters)

    async def list(
        self,
        *expressions: Any,
        order_by: Order = None,
        limit: int | None = None,
        offset: int | None = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> list[T]:
        return await self._run(
            Repository.list,
            *expressions,
            order_by=order_by,
            limit=limit,
            offset=offset,
            options=options,
            **filters,
        )

    async def count(self, *expressions: Any, **filters: Any) -> int:
        return await self._run(Repository.count, *expressions, **filters)

    async def exists(self, *expressions: Any, **filters: Any) -> bool:
        return await self._run(Repository.exists, *expressions, **filters)

    async def page(
        self,
        page: int = 1,
        per_page: int = 20,
        *expressions: Any,
        order_by: Order = None,
        count: bool = True,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> Page[T]:
        return await self._run(
            Repository.page,
            page,
            per_page,
            *expressions,
            order_by=order_by,
            count=count,
            options=options,
            **filters,
        )

    async def keyset(
        self,
        *expressions: Any,
        after: str | None = None,
        limit: int = 50,
        order_by: Order = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> KeysetPage[T]:
        return await self._run(
            Repository.keyset,
            *expressions,
            after=after,
            limit=limit,
            order_by=order_by,
            options=options,
            **filters,
        )

    async def stream(
        self,
        *expressions: Any,
        batch_size: int = 1000,
        order_by: Order = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> AsyncIterator[T]:
        """Every matching row, ``batch_size`` at a time through a server-side cursor
        where the backend has one: ``async for row in repo.stream(): ...``."""
        sql.check_streamable(self.session.info)
        stmt = sql.select_rows(self._cols, expressions, filters, order_by=order_by,
                               options=options)
        result = await self.session.stream_scalars(
            stmt, execution_options={"yield_per": batch_size}
        )
        try:
            async for item in result:
                yield item
        finally:
            await result.close()

    async def create(self, **values: Any) -> T:
        return await self._run(Repository.create, **values)

    async def update(
        self, instance: T | Any, changes: Mapping[str, Any] | None = None, /, **values: Any
    ) -> T:
        return await self._run(Repository.update, instance, changes, **values)

    async def delete(self, instance: T | Any) -> None:
        await self._run(Repository.delete, instance)

    async def delete_where(self, *expressions: Any, **filters: Any) -> int:
        return await self._run(Repository.delete_where, *expressions, **filters)

    @overload
    async def bulk_create(self, rows: Rows[T], *, returning: Literal[False] = False) -> int: ...

    @overload
    async def bulk_create(self, rows: Rows[T], *, returning: Literal[True]) -> builtins.list[T]: ...

    async def bulk_create(
        self, rows: Rows[T], *, returning: bool = False
    ) -> int | builtins.list[T]:
        return await self._run(Repository.bulk_create, list(rows), returning=returning)

    async def bulk_update(self, rows: Rows[T]) -> int:
        return await self._run(Repository.bulk_update, list(rows))

    async def upsert_many(
        self, rows: Rows[T], *, on: Sequence[str], update: Sequence[str] | None = None
    ) -> int:
        return await self._run(Repository.upsert_many, list(rows), on=on, update=update)

    async def aggregate(
        self,
        *expressions: Any,
        group_by: Order = None,
        values: Mapping[str, str] | None = None,
        order_by: Order = None,
        **filters: Any,
    ) -> builtins.list[AttributeDict]:
        return await self._run(
            Repository.aggregate,
            *expressions,
            group_by=group_by,
            values=values,
            order_by=order_by,
            **filters,
        )


for _name, _method in list(vars(AsyncRepository).items()):
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(Repository, _name).__doc__
