"""Run the conformance suite's synchronous test bodies against the async API.

The bridge drives an ``AsyncDatabase`` on an event loop in a background thread and
offers the ``Database`` surface the suite uses (``session``, ``read_session``,
``run_in_transaction``, ``health``, repositories and savepoints). Every repository call
becomes an awaited ``AsyncRepository`` call on the async driver, so the same test
bodies check both faces of the API.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

from storelayer.aio import AsyncDatabase, AsyncRepository, AsyncSession
from storelayer.database import Database
from storelayer.health import HealthReport

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread; ``run`` waits for a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    @contextmanager
    def enter(self, manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
        """Use an async context manager from synchronous code."""
        value = self.run(manager.__aenter__())
        try:
            yield value
        except BaseException as error:
            if not self.run(manager.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self.run(manager.__aexit__(None, None, None))


class BridgedRepository:
    """An ``AsyncRepository`` called synchronously."""

    def __init__(self, repository: AsyncRepository[Any], loop: LoopThread) -> None:
        self._repository = repository
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._repository, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(method(*args, **kwargs))

        return call

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """``async for`` over ``AsyncRepository.stream``, one row at a time."""
        rows: AsyncIterator[Any] = self._repository.stream(*args, **kwargs)
        try:
            while True:
                try:
                    yield self._loop.run(rows.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(rows.aclose())  # type: ignore[attr-defined]


class BridgedSession:
    """An ``AsyncSession`` offering ``repository`` and ``savepoint`` synchronously."""

    def __init__(self, session: AsyncSession, loop: LoopThread) -> None:
        self._session = session
        self._loop = loop
        self.backend = session.backend

    def repository(self, model: type[Any]) -> BridgedRepository:
        return BridgedRepository(self._session.repository(model), self._loop)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncSession.execute``, awaited."""
        return self._loop.run(self._session.execute(*args, **kwargs))

    @contextmanager
    def savepoint(self) -> Iterator[Any]:
        with self._loop.enter(self._session.savepoint()) as nested:
            yield nested


class BridgedDatabase:
    """The ``Database`` surface the conformance suite uses, over an ``AsyncDatabase``.

    ``engine`` is a synchronous engine on the same database, for the suite's table
    set-up and inspection only; everything under test goes through the async API.
    """

    def __init__(self, database: AsyncDatabase, setup: Database) -> None:
        self.async_database = database
        self.backend = database.backend
        self.url = database.url
        self.engine = setup.engine
        self._setup = setup
        self._loop = LoopThread()

    @contextmanager
    def session(self) -> Iterator[BridgedSession]:
        with self._loop.enter(self.async_database.session()) as s:
            yield BridgedSession(s, self._loop)

    @contextmanager
    def read_session(self, *, autocommit: bool = False) -> Iterator[BridgedSession]:
        with self._loop.enter(self.async_database.read_session(autocommit=autocommit)) as s:
            yield BridgedSession(s, self._loop)

    def run_in_transaction(self, fn: Callable[[BridgedSession], T], **options: Any) -> T:
        """``fn`` runs in a worker thread so its bridged calls can use the loop;
        ``options`` as ``AsyncDatabase.run_in_transaction``."""

        async def unit(s: AsyncSession) -> T:
            return await asyncio.to_thread(fn, BridgedSession(s, self._loop))

        return self._loop.run(self.async_database.run_in_transaction(unit, **options))

    def health(self) -> HealthReport:
        return self._loop.run(self.async_database.health())

    def dispose(self) -> None:
        self._loop.run(self.async_database.dispose())
        self._loop.close()
        self._setup.dispose()
