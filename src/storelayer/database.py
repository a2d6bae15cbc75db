"""``connect()`` and ``Database``: engines, units of work, retries and health."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import sessionmaker

from storelayer._conflicts import conflict_from
from storelayer._engines import (
    READ_ONLY_OPTION,
    engine_options,
    instrument,
    is_transient,
    missing_driver,
)
from storelayer._pool import PoolGuard, pool_usage
from storelayer._retry import call_with_retries
from storelayer._roundtrips import round_trip_policy
from storelayer._units import commit_or_unknown, explained
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.errors import CommitOutcomeUnknown
from storelayer.health import HealthChecker, MigrationState, check
from storelayer.health import HealthReport as HealthReport  # its old home
from storelayer.metrics import Metrics
from storelayer.plugins import PluginManager, get_plugin_manager
from storelayer.routing import ConsistencyToken, RoutingPolicy, RoutingSnapshot, SyncRouting
from storelayer.session import AUTOCOMMIT_KEY, Session, session_info

if TYPE_CHECKING:
    from storelayer.backup import BackupManifest, RestoreReport

T = TypeVar("T")


def connect(
    url: str | URL | None = None,
    *,
    replicas: list[str | URL] | None = None,
    backend: str | None = None,
    plugins: PluginManager | None = None,
    routing: RoutingPolicy | None = None,
    **settings: Any,
) -> Database:
    """Open a ``Database`` on ``url`` (default: ``DATABASE_URL``, else the SQLite file
    ``./storelayer.db``). Keyword arguments override the ``STORELAYER_*`` environment;
    ``routing`` tunes read-replica routing (default: ``RoutingPolicy.from_env()``)."""
    resolved, chosen, manager = resolve(url, replicas, backend, plugins, settings)
    return Database(resolved, chosen, manager, routing=routing)


def resolve(
    url: str | URL | None,
    replicas: list[str | URL] | None,
    backend: str | None,
    plugins: PluginManager | None,
    settings: dict[str, Any],
) -> tuple[Settings, Backend, PluginManager]:
    """The settings (environment, then arguments), the backend serving them and the
    plugin manager: what ``connect()`` and ``connect_async()`` both start from."""
    if replicas is not None:
        settings["replicas"] = replicas
    resolved = Settings.from_env(url, backend=backend, **settings)
    manager = plugins or get_plugin_manager()
    return resolved, manager.resolve(resolved.url.drivername, resolved.backend), manager


class Database:
    """Engines and units of work for one configured database."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        plugins: PluginManager,
        *,
        routing: RoutingPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.url = backend.normalize_url(settings.url)
        self._metrics = Metrics(plugins, settings.slow_statement_ms)
        self._pool_guards: dict[str, PoolGuard] = {}
        self._health = HealthChecker(backend, settings)
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
        self._autocommit_sessions = sessionmaker(
            self.engine.execution_options(
                **{READ_ONLY_OPTION: True}, **backend.autocommit_read_options()
            ),
            class_=Session,
            expire_on_commit=False,
            info={**session_info(backend), AUTOCOMMIT_KEY: True},
        )
        self._routing = SyncRouting(
            settings=settings,
            backend=backend,
            primary=self.engine,
            create_engine=self._create_engine,
            policy=routing,
        )

    def __repr__(self) -> str:
        return f"<Database backend={self.backend.name!r} url={mask_url(self.url)!r}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    # -- engines ----------------------------------------------------------------------

    def _create_engine(
        self, url: URL, role: str, overrides: Mapping[str, Any] | None = None
    ) -> Engine:
        """An instrumented engine; ``role`` is "primary" or "replica:<n>" (the hook is
        told "replica"), ``overrides`` update the backend's tuning (replica pools)."""
        try:
            options = {**engine_options(self.backend, url, self.settings), **(overrides or {})}
            install_policy = round_trip_policy(options, self.settings.ping_after)
            engine = create_engine(url, **options)
            install_policy(engine)
        except (exc.NoSuchModuleError, ImportError) as error:
            raise missing_driver(error, self.backend, url) from error
        self._metrics.attach(engine, role)
        self._pool_guards[role] = PoolGuard(engine, self.backend, self.settings, role)
        instrument(engine, self.backend, self.plugins, url, role.partition(":")[0])
        return engine

    def engines(self) -> dict[str, Engine]:
        """Every engine by role: "primary", then "replica:0", "replica:1"..."""
        return {"primary": self.engine, **self._routing.engines}

    # -- units of work ----------------------------------------------------------------

    @contextmanager
    def session(
        self, *, using: str | None = None, token: str | ConsistencyToken | None = None
    ) -> Iterator[Session]:
        """A read-write unit of work on the primary: committed when the block ends,
        rolled back when it raises. With replicas, ``using="auto"`` (or automatic
        routing in the ``RoutingPolicy``) reads on a replica until the first write;
        ``using="primary"`` forces the primary (docs/operations/replicas.md)."""
        factory = self._routing.factory(using, token, read=False) or self._sessions
        with self._unit_of_work(factory) as s:
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
        with self._unit_of_work(factory) as s:
            yield s

    @contextmanager
    def _unit_of_work(self, factory: Callable[[], Session]) -> Iterator[Session]:
        s = factory()
        try:
            yield s
            s.flush()  # errors before COMMIT is sent leave no doubt about the outcome
            commit_or_unknown(s.commit, self.url)
        except exc.IntegrityError as error:
            self._safe_rollback(s)
            raise conflict_from(error, self.backend) from error
        except (exc.TimeoutError, exc.DBAPIError) as error:
            self._safe_rollback(s)
            writes = factory is self._sessions or getattr(factory, "writes", False)
            clearer = explained(error, self.backend, s.get_bind(), self._engine_map(), writes)
            if clearer is None:
                raise
            raise clearer from error
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
        self,
        fn: Callable[[Session], T],
        *,
        retries: int = 3,
        max_seconds: float = 30.0,
        idempotent: bool = False,
    ) -> T:
        """Run ``fn(session)`` in its own unit of work; when it fails on an error the
        backend calls transient (deadlock, serialization failure, lost connection,
        database locked), roll back and run the whole unit again, up to ``retries``
        times with exponential backoff and jitter, within ``max_seconds``.

        A connection lost while COMMIT was in flight raises ``CommitOutcomeUnknown``
        and is not retried, unless ``idempotent=True`` says that running ``fn`` again
        after it may have committed is harmless."""

        def attempt() -> T:
            with self.session() as s:
                return fn(s)

        def retryable(error: BaseException) -> bool:
            if isinstance(error, CommitOutcomeUnknown):
                return idempotent
            return self.is_transient(error)

        return call_with_retries(
            attempt,
            is_transient=retryable,
            retries=retries,
            max_seconds=max_seconds,
            on_retry=lambda error, _n: self._metrics.retry("primary", error),
        )

    def is_transient(self, error: BaseException) -> bool:
        """Whether retrying a unit of work that raised ``error`` may succeed."""
        return is_transient(self.backend, error)

    # -- operations -------------------------------------------------------------------

    def _engine_map(self) -> dict[str, Engine]:
        """Role -> engine: ``engines()`` when replicas are supported, else the primary."""
        engines = getattr(self, "engines", None)
        found: dict[str, Engine] = dict(engines()) if callable(engines) else {}
        return found or {"primary": self.engine}

    def health(self, *, migrations: MigrationState | None = None) -> HealthReport:
        """Per engine (primary and replicas): reachable, latency, server version, pool
        use and replica lag, each probed on a connection of its own within
        ``health_timeout`` seconds; then readiness: replicas within the lag threshold
        and, when a ``MigrationManager`` is given, migrations at head."""
        engines = self._engine_map()
        pools = {
            role: {**pool_usage(engine), **self._guard_report(role)}
            for role, engine in engines.items()
        }
        return check(self._health, engines, pools, migrations)

    def _guard_report(self, role: str) -> dict[str, Any]:
        guard = self._pool_guards.get(role)
        return guard.report() if guard is not None else {}

    def metrics(self) -> dict[str, Any]:
        """Statements, errors, retries, latency percentiles, slow statements and pool
        checkouts, waits and overflow, per engine (see docs/operations/resilience.md)."""
        return self._metrics.snapshot()

    def reset_metrics(self) -> None:
        """Start counting from zero."""
        self._metrics.reset()

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

    def last_write_token(self) -> str | None:
        """The consistency token of the last commit that wrote, in this thread or
        asyncio task (None without replicas): pass it to ``read_session(token=...)``,
        here or in another process, to read at least that write."""
        return self._routing.last_write_token()

    def routing_stats(self) -> RoutingSnapshot:
        """Routing decisions so far: reads per target, fallbacks, ejections."""
        return self._routing.stats()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._routing.dispose()
        self.engine.dispose()
        self._health.dispose()
