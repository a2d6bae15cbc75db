"""``connect()`` and ``Database``: engines, units of work, retries and health."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import sessionmaker

from storelayer._conflicts import conflict_from, one_line
from storelayer._engines import READ_ONLY_OPTION, engine_options, instrument, is_transient
from storelayer._retry import call_with_retries
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.errors import StorelayerError
from storelayer.plugins import PluginManager, get_plugin_manager
from storelayer.session import Session, session_info

T = TypeVar("T")


@dataclass(frozen=True)
class HealthReport:
    """The answer of ``Database.health()``."""

    healthy: bool
    backend: str
    url: str
    latency_ms: float | None
    server_version: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def connect(
    url: str | URL | None = None,
    *,
    replicas: list[str | URL] | None = None,
    backend: str | None = None,
    plugins: PluginManager | None = None,
    **settings: Any,
) -> Database:
    """Open a ``Database`` on ``url`` (default: ``DATABASE_URL``, else the SQLite file
    ``./storelayer.db``). Keyword arguments override the ``STORELAYER_*`` environment."""
    if replicas is not None:
        settings["replicas"] = replicas
    resolved = Settings.from_env(url, backend=backend, **settings)
    manager = plugins or get_plugin_manager()
    chosen = manager.resolve(resolved.url.drivername, resolved.backend)
    return Database(resolved, chosen, manager)


class Database:
    """Engines and units of work for one configured database."""

    def __init__(self, settings: Settings, backend: Backend, plugins: PluginManager) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.url = backend.normalize_url(settings.url)
        self.engine = self._create_engine(self.url, "primary")
        self._sessions = sessionmaker(
            self.engine, class_=Session, expire_on_commit=False, info=session_info(backend)
        )
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}),
            class_=Session,
            expire_on_commit=False,
            info=session_info(backend),
        )

    def __repr__(self) -> str:
        return f"<Database backend={self.backend.name!r} url={mask_url(self.url)!r}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    # -- engines ----------------------------------------------------------------------

    def _create_engine(self, url: URL, role: str) -> Engine:
        engine = create_engine(url, **engine_options(self.backend, url, self.settings))
        instrument(engine, self.backend, self.plugins, url, role)
        return engine

    # -- units of work ----------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write unit of work on the primary: committed when the block ends,
        rolled back when it raises."""
        with self._unit_of_work(self._sessions) as s:
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only unit of work (on the primary until replicas are configured)."""
        with self._unit_of_work(self._read_sessions) as s:
            yield s

    @contextmanager
    def _unit_of_work(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        s = factory()
        try:
            yield s
            s.commit()
        except exc.IntegrityError as error:
            self._safe_rollback(s)
            raise conflict_from(error, self.backend) from error
        except BaseException:
            self._safe_rollback(s)
            raise
        finally:
            s.close()

    @staticmethod
    def _safe_rollback(s: Session) -> None:
        with suppress(exc.DBAPIError):  # the connection died; the pool invalidated it
            s.rollback()

    def run_in_transaction(
        self, fn: Callable[[Session], T], *, retries: int = 3, max_seconds: float = 30.0
    ) -> T:
        """Run ``fn(session)`` in its own unit of work; when it fails on an error the
        backend calls transient (deadlock, serialization failure, lost connection,
        database locked), roll back and run the whole unit again, up to ``retries``
        times with exponential backoff and jitter."""

        def attempt() -> T:
            with self.session() as s:
                return fn(s)

        return call_with_retries(
            attempt, is_transient=self.is_transient, retries=retries, max_seconds=max_seconds
        )

    def is_transient(self, error: BaseException) -> bool:
        """Whether retrying a unit of work that raised ``error`` may succeed."""
        return is_transient(self.backend, error)

    # -- operations -------------------------------------------------------------------

    def health(self) -> HealthReport:
        """Reachability, round-trip latency and server version of the primary."""
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                latency = (time.perf_counter() - started) * 1000
                version = self.backend.server_version(conn)
        except (exc.SQLAlchemyError, StorelayerError) as error:
            return HealthReport(
                False,
                self.backend.name,
                mask_url(self.url),
                None,
                None,
                one_line(error, self.url.password),
            )
        return HealthReport(True, self.backend.name, mask_url(self.url), round(latency, 3), version)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
