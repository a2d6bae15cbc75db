"""``connect()`` and ``Database``: engines, units of work, retries and health."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import sessionmaker

from storelayer._attempts import HeldConnection, run_attempts
from storelayer._core import EngineCore, resolve
from storelayer._engines import READ_ONLY_OPTION, is_transient, isolation_options
from storelayer._retry import RetryPolicy, call_with_retries
from storelayer._units import (
    asking,
    before_commit,
    commit_or_unknown,
    decided,
    known_outcome,
)
from storelayer.backend import SELECTS_ONLY_OPTION, Backend
from storelayer.config import Settings, mask_url
from storelayer.errors import StorelayerError
from storelayer.health import HealthReport, MigrationState
from storelayer.plugins import PluginManager
from storelayer.repository._plans import Plan, stream_needs_unit
from storelayer.repository._rows import Rows
from storelayer.repository._rows import run as run_plan
from storelayer.routing import ConsistencyToken, RoutingPolicy, RoutingSnapshot, SyncRouting
from storelayer.session import AUTOCOMMIT_KEY, Session, session_info

if TYPE_CHECKING:
    from storelayer.backup import BackupManifest, RestoreReport

T = TypeVar("T")
EngineT = TypeVar("EngineT")


def connect(
    url: str | URL | None = None,
    *,
    replicas: list[str | URL] | None = None,
    backend: str | None = None,
    plugins: PluginManager | None = None,
    routing: RoutingPolicy | None = None,
    retry: RetryPolicy | None = None,
    **settings: Any,
) -> Database:
    """Open a ``Database`` on ``url`` (default: ``DATABASE_URL``, else the SQLite file
    ``./storelayer.db``). Keyword arguments override the ``STORELAYER_*`` environment;
    ``routing`` tunes read-replica routing (default: ``RoutingPolicy.from_env()``),
    ``retry`` the retries of ``run_in_transaction`` (default: ``RetryPolicy.from_env()``)."""
    resolved, chosen, manager = resolve(url, replicas, backend, plugins, settings)
    return Database(resolved, chosen, manager, routing=routing, retry=retry)


class DatabaseBase(Generic[EngineT]):
    """What ``Database`` and ``AsyncDatabase`` share: settings, the ``EngineCore`` (engines,
    metrics, health, errors, retries), session factories and replica routing."""

    _is_async: ClassVar[bool] = False
    _session_class: ClassVar[type[Any]] = Session
    _maker: ClassVar[Callable[..., Any]] = sessionmaker
    _routing_class: ClassVar[Callable[..., Any]] = SyncRouting

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        plugins: PluginManager,
        *,
        routing: RoutingPolicy | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        #: How ``run_in_transaction`` retries, unless a call says otherwise.
        self.retry_policy = retry or RetryPolicy.from_env()
        self.backend = backend
        self.plugins = plugins
        self._core = EngineCore(settings, backend, plugins, is_async=self._is_async)
        self.engine: EngineT = self._core.create_engine(self._core.url, "primary")
        self.url: URL = self.engine.url
        # Views of the engine, each made from the engine itself: a view of a view
        # dispatches every connection event through one more level.
        read = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        autocommit_options = {READ_ONLY_OPTION: True, **backend.autocommit_read_options()}
        autocommit = self.engine.execution_options(**autocommit_options)
        self._sessions = self._factory(self.engine)
        self._read_sessions = self._factory(read)
        self._autocommit_sessions = self._factory(autocommit, {AUTOCOMMIT_KEY: True})
        #: Where ``db.rows`` reads run: only SELECTs built from read plans, so the
        #: connection needs no switch to the read-only mode (a write cannot be sent).
        self._rows_engine = self.engine.execution_options(
            **autocommit_options, **{SELECTS_ONLY_OPTION: True}
        )
        #: Portable isolation name -> (session factory, engine view at that level).
        self._isolated: dict[str, tuple[Any, EngineT]] = {}
        self._routing = self._routing_class(
            settings=settings,
            backend=backend,
            primary=self.engine,
            create_engine=self._core.create_engine,
            policy=routing,
        )

    def _factory(self, engine: EngineT, info: dict[str, Any] | None = None) -> Any:
        return self._maker(
            engine,
            class_=self._session_class,
            expire_on_commit=False,
            info={**session_info(self.backend), **(info or {})},
        )

    def _write_sessions(self, isolation: str | None) -> tuple[Any, EngineT]:
        """The session factory and engine of a read-write unit at ``isolation`` (a
        portable name; None: the database's default): one engine view and one factory
        per level, made on first use and kept."""
        options = isolation_options(self.backend, isolation)
        if not options or isolation is None:
            return self._sessions, self.engine
        if isolation not in self._isolated:
            engine: Any = self.engine
            view = engine.execution_options(**options)
            self._isolated.setdefault(isolation, (self._factory(view), view))
        return self._isolated[isolation]

    def _routed_writes(self, isolation: str | None) -> tuple[Any, EngineT, dict[str, Any]]:
        """``_write_sessions(isolation)`` and the routing arguments of such a unit: the
        synchronous engine it writes through, when it asked for a level."""
        factory, engine = self._write_sessions(isolation)
        primary = None if isolation is None else getattr(engine, "sync_engine", engine)
        return factory, engine, {"read": False, "primary": primary}

    def _connect_failed(self, error: BaseException) -> BaseException:
        """storelayer's error for a connection a unit of work could not get."""
        return self._core.translate(error, lambda: None, True) or error

    def _held(self, isolation: str | None, routed: Callable[[], Any] | None) -> HeldConnection:
        """The connection the attempts of one ``run_in_transaction`` at ``isolation``
        share (``routed``: the replica router's factory for such a unit, if any)."""
        plain, engine, _ = self._routed_writes(isolation)
        return HeldConnection(engine, plain, routed, self._connect_failed)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend.name!r} url={mask_url(self.url)!r}>"

    def engines(self) -> dict[str, EngineT]:
        """Every engine by role: "primary", then "replica:0", "replica:1"..."""
        return {"primary": self.engine, **self._routing.engines}

    def _retrying(
        self,
        retry: RetryPolicy | None,
        retries: int | None,
        max_seconds: float | None,
        idempotent: bool,
    ) -> dict[str, Any]:
        """How ``run_in_transaction`` retries: the call's policy (else the database's)
        with ``retries``/``max_seconds`` on top, as ``call_with_retries`` arguments."""
        return {
            "is_transient": self._core.retryable(idempotent),
            "policy": (retry or self.retry_policy).limited(retries, max_seconds),
            "on_retry": self._core.on_retry(),
        }

    def is_transient(self, error: BaseException) -> bool:
        """Whether retrying a unit of work that raised ``error`` may succeed."""
        return is_transient(self.backend, error)

    def metrics(self) -> dict[str, Any]:
        """Statements, errors, retries, latency percentiles, slow statements and pool
        checkouts, waits and overflow, per engine (see docs/operations/resilience.md)."""
        return self._core.metrics.snapshot()

    def reset_metrics(self) -> None:
        """Start counting from zero."""
        self._core.metrics.reset()

    def last_write_token(self) -> str | None:
        """The consistency token of the last commit that wrote, in this thread or
        asyncio task (None without replicas): pass it to ``read_session(token=...)``,
        here or in another process, to read at least that write."""
        return self._routing.last_write_token()  # type: ignore[no-any-return]

    def routing_stats(self) -> RoutingSnapshot:
        """Routing decisions so far: reads per target, fallbacks, ejections."""
        return self._routing.stats()  # type: ignore[no-any-return]


class Database(DatabaseBase[Engine]):
    """Engines and units of work for one configured database."""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    # -- units of work ----------------------------------------------------------------

    @contextmanager
    def session(
        self,
        *,
        using: str | None = None,
        token: str | ConsistencyToken | None = None,
        isolation: str | None = None,
    ) -> Iterator[Session]:
        """A read-write unit of work on the primary: committed when the block ends,
        rolled back when it raises. With replicas, ``using="auto"`` (or automatic
        routing in the ``RoutingPolicy``) reads on a replica until the first write;
        ``using="primary"`` forces the primary (docs/operations/replicas.md).
        ``isolation``: "read_committed", "repeatable_read" or "serializable" (None:
        the database's default); such a unit reads on the primary
        (docs/backends/ says what each level guarantees on each database)."""
        plain, _, routing = self._routed_writes(isolation)
        factory = self._routing.factory(using, token, **routing) or plain
        with self._unit_of_work(factory, writes=True) as s:
            yield s

    @contextmanager
    def read_session(
        self,
        *,
        autocommit: bool = False,
        using: str | None = None,
        token: str | ConsistencyToken | None = None,
    ) -> Iterator[Session]:
        """A read-only unit of work on a healthy replica within the lag threshold (the
        primary when none is configured or none can serve). ``token``: read at least
        what the commit that produced it wrote (``last_write_token()``);
        ``using="primary"`` forces the primary.

        ``autocommit=True``: no transaction around the reads, where the backend makes
        that cheaper (one round trip per read on PostgreSQL instead of BEGIN, SELECT,
        COMMIT); each statement sees the latest commits; ``stream()`` is unavailable.
        """
        plain = self._autocommit_sessions if autocommit else self._read_sessions
        factory = self._routing.factory(using, token, read=True, autocommit=autocommit) or plain
        with self._unit_of_work(factory, writes=getattr(factory, "writes", False)) as s:
            yield s

    @contextmanager
    def _unit_of_work(self, factory: Callable[[], Session], writes: bool) -> Iterator[Session]:
        s = factory()
        try:
            yield s
            marker = None
            if writes:  # a read unit's COMMIT flushes what little it may hold
                with before_commit(self.url):  # no doubt: COMMIT was not sent
                    s.flush()
                    marker = self._core.commit_marker(s)
            commit_or_unknown(
                s.commit,
                self.url,
                known_outcome(writes, self.backend, marker),
                partial(self._outcome, marker),
            )
        except BaseException as error:
            with suppress(exc.DBAPIError):  # the connection died; the pool invalidated it
                s.rollback()
            clearer = self._core.translate(error, s.get_bind, writes)
            if clearer is None:
                raise
            raise clearer from error
        finally:
            s.close()

    def _outcome(self, marker: Any) -> bool | None:
        """Whether the transaction ``marker`` names committed, asked on a new connection,
        again while the server is away or cannot tell yet, within the database's
        ``RetryPolicy``; None when it still cannot be told."""

        def ask() -> bool:
            with self.engine.connect() as connection:
                return decided(self.backend.ops.committed(connection, marker))

        try:
            return call_with_retries(ask, **asking(self.backend, self.retry_policy))
        except (StorelayerError, exc.SQLAlchemyError):
            return None

    def run_in_transaction(
        self,
        fn: Callable[[Session], T],
        *,
        isolation: str | None = "serializable",
        retry: RetryPolicy | None = None,
        retries: int | None = None,
        max_seconds: float | None = None,
        idempotent: bool = False,
    ) -> T:
        """Run ``fn(session)`` in its own unit of work; when it fails on an error the
        backend calls transient (deadlock, serialization failure, lost connection,
        database locked), roll back and run the whole unit again as ``retry`` says
        (default: the database's ``RetryPolicy``: exponential backoff with jitter
        within a 30-second budget). ``retries`` (retries after the first run) and
        ``max_seconds`` override its limits.

        The unit runs at ``isolation`` (default "serializable"): a read-modify-write
        written without locks loses no update, because the database reports the
        conflict and the unit runs again. ``isolation=None`` runs it at the database's
        default (docs/performance.md measures what each level costs).

        A connection lost while COMMIT was in flight raises ``CommitOutcomeUnknown``
        and is not retried, unless ``idempotent=True`` says that running ``fn`` again
        after it may have committed is harmless."""

        plan = self._retrying(retry, retries, max_seconds, idempotent)
        routed = self._routing.factory(None, None, **self._routed_writes(isolation)[2])
        return run_attempts(self._held(isolation, routed), self._unit_of_work, fn, plan)

    # -- operations -------------------------------------------------------------------

    def health(self, *, migrations: MigrationState | None = None) -> HealthReport:
        """Per engine (primary and replicas): reachable, latency, server version, pool
        use and replica lag, each probed on a connection of its own within
        ``health_timeout`` seconds; then readiness: replicas within the lag threshold
        and, when a ``MigrationManager`` is given, migrations at head."""
        return self._core.health(migrations)

    def backup(self, path: str | Path, **options: Any) -> BackupManifest:
        """Back up into one verified artifact at ``path``; keyword arguments as
        :func:`storelayer.backup.create_backup` (``compression``, ``recipients``...)."""
        from storelayer.backup import create_backup

        return create_backup(self, path, **options)

    def restore(self, path: str | Path, **options: Any) -> RestoreReport:
        """Restore the artifact at ``path``, verified first; keyword arguments as
        :func:`storelayer.backup.restore_backup` (``force``, ``identity``, ``jobs``...)."""
        from storelayer.backup import restore_backup

        return restore_backup(self, path, **options)

    def rows(self, model: type[T]) -> Rows[T]:
        """Reads of ``model`` returning ``Row`` objects, each call a read of its own
        without a transaction (``read_session(autocommit=True)`` semantics, routed to
        a replica when there are some): the cheapest way to show data
        (docs/performance.md). ``stream()`` needs a unit: ``repo.rows.stream()``."""
        return Rows(model, self._read_plan, stream_needs_unit)

    def _read_plan(self, plan: Plan) -> Any:
        if self._routing.engines:  # the routed unit picks the replica
            with self.read_session(autocommit=True) as s:
                return run_plan(plan, s.connection().execute)
        try:
            with self._rows_engine.connect() as connection:
                return run_plan(plan, connection.execute)
        except (exc.TimeoutError, exc.DBAPIError) as error:
            clearer = self._connect_failed(error)
            if clearer is error:
                raise
            raise clearer from error

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._routing.dispose()
        self.engine.dispose()
        self._core.dispose()
