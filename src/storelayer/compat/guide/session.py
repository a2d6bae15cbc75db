"""``storelayer.compat.guide.session``: the guide's ``DatabaseManager``, ``RetryConfig``
and the default database behind ``init_db()`` and ``get_session()``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import URL, Engine

from storelayer._retry import RetryPolicy
from storelayer.database import Database, connect
from storelayer.errors import ConfigurationError
from storelayer.health import HealthReport
from storelayer.migrations import MigrationManager
from storelayer.session import Session

#: The guide's name for storelayer's ``RetryPolicy`` (the same fields: ``max_attempts``,
#: ``initial_delay``, ``max_delay``, ``exponential_base``, ``jitter``, ``max_seconds``).
RetryConfig = RetryPolicy


class DatabaseManager:
    """One database with its pool and retry policy: ``connect()`` under the guide's
    name. ``get_session()`` is a unit of work (commit on success, rollback on error)."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float | None = None,
        pool_recycle: int | None = None,
        retry_config: RetryPolicy | None = None,
        echo: bool = False,
        **settings: Any,
    ) -> None:
        pool = {"pool_size": pool_size, "max_overflow": max_overflow,
                "pool_timeout": pool_timeout, "pool_recycle": pool_recycle}
        chosen: dict[str, Any] = {k: v for k, v in pool.items() if v is not None}
        self.database = connect(url, retry=retry_config, echo=echo, **chosen, **settings)

    def __repr__(self) -> str:
        return f"<DatabaseManager {self.database!r}>"

    @property
    def engine(self) -> Engine:
        """The primary's SQLAlchemy engine."""
        return self.database.engine

    @contextmanager
    def get_session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on an error."""
        with self.database.session() as session:
            yield session

    def get_session_factory(self) -> Callable[[], Session]:
        """A factory of plain sessions on the primary, which the caller commits, rolls
        back and closes."""
        factory: Callable[[], Session] = self.database._sessions
        return factory

    def health_check(self) -> HealthReport:
        """``Database.health()``: ``report["healthy"]``, ``report["latency_ms"]``,
        ``report["error"]`` (or the same as attributes)."""
        return self.database.health()

    def close(self) -> None:
        """Close every pooled connection."""
        self.database.dispose()

    dispose = close


_default: list[DatabaseManager] = []


def init_db(
    url: str | URL | None = None, *, create_schema: bool = True, **options: Any
) -> DatabaseManager:
    """Open the default database (``url``, else ``DATABASE_URL``) used by the
    module-level functions, replacing any earlier one; keyword arguments as
    ``DatabaseManager``. ``create_schema`` brings the reference schema up to date with
    its migrations (a no-op when it is)."""
    url = url or os.environ.get("DATABASE_URL") or None
    manager = DatabaseManager(url, **options)
    if create_schema:
        MigrationManager(manager.database).upgrade()
    close_db()
    _default.append(manager)
    return manager


def close_db() -> None:
    """Close the default database (``init_db`` opens a new one)."""
    while _default:
        _default.pop().close()


def default_manager() -> DatabaseManager:
    """The default database: the one ``init_db()`` opened, else one on ``DATABASE_URL``
    (``ConfigurationError`` when neither is set)."""
    if not _default:
        if not os.environ.get("DATABASE_URL"):
            raise ConfigurationError(
                "no default database: call init_db(url) first, or set DATABASE_URL"
            )
        init_db()
    return _default[0]


def default_database() -> Database:
    """The default database's ``Database``."""
    return default_manager().database


@contextmanager
def get_session() -> Iterator[Session]:
    """A unit of work on the default database: committed at the end of the block,
    rolled back on an error."""
    with default_manager().get_session() as session:
        yield session


def get_engine() -> Engine:
    """The default database's engine."""
    return default_manager().engine


def get_session_factory() -> Callable[[], Session]:
    """A factory of plain sessions on the default database (commit, rollback and close
    are the caller's)."""
    return default_manager().get_session_factory()


def health_check() -> HealthReport:
    """The default database's health report (``result["healthy"]``)."""
    return default_manager().health_check()
