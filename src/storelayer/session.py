"""The unit-of-work session: a SQLAlchemy ``Session`` that hands out repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import orm

from storelayer._engines import AUTOCOMMIT_KEY as AUTOCOMMIT_KEY
from storelayer._engines import BACKEND_KEY as BACKEND_KEY
from storelayer.repository import Repository

if TYPE_CHECKING:
    from storelayer.backend import Backend

T = TypeVar("T")


class Session(orm.Session):
    """A SQLAlchemy session bound to a storelayer backend."""

    @property
    def backend(self) -> Backend:
        """The backend serving this session."""
        backend: Backend = self.info[BACKEND_KEY]
        return backend

    def repository(self, model: type[T]) -> Repository[T]:
        """The generic repository of ``model`` in this unit of work."""
        return Repository(self, model)

    @contextmanager
    def savepoint(self) -> Iterator[orm.SessionTransaction]:
        """A nested transaction: rolled back alone when its block raises, keeping the
        outer work; released when the block ends normally."""
        with self.begin_nested() as nested:
            yield nested

    def __repr__(self) -> str:
        return f"<storelayer.Session backend={self.info.get(BACKEND_KEY)!r}>"


def session_info(backend: Backend) -> dict[str, Any]:
    """The ``info`` dict every storelayer session starts with."""
    return {BACKEND_KEY: backend}
