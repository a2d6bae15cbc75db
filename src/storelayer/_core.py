"""``EngineCore``: what ``Database`` and ``AsyncDatabase`` share, so that the two APIs
are one product: engines built and instrumented the same way (the backend's tuning,
metrics, pool guard, plugin hook), one health check, one translation of a failed unit of
work into storelayer's errors, and retries counted in the metrics. The sync and async
databases add only the awaiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storelayer._conflicts import conflict_from, invalid_value_from
from storelayer._engines import engine_options, instrument, is_transient, missing_driver
from storelayer._pool import PoolGuard, pool_usage
from storelayer._retry import OnRetry
from storelayer._roundtrips import round_trip_policy
from storelayer._units import explained
from storelayer.backend import Backend
from storelayer.config import Settings
from storelayer.errors import CommitOutcomeUnknown, StorelayerError
from storelayer.health import HealthChecker, HealthReport, MigrationState, check
from storelayer.metrics import Metrics
from storelayer.plugins import PluginManager, get_plugin_manager

T = TypeVar("T")


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


class EngineCore:
    """Engines by role ("primary", "replica:<n>"), with their metrics, pool guards and
    health probes, for one configured database in one API mode."""

    def __init__(
        self, settings: Settings, backend: Backend, plugins: PluginManager, *, is_async: bool
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.is_async = is_async
        #: The primary's URL through the sync driver (what probes and tools use).
        self.url = backend.normalize_url(settings.url)
        self.metrics = Metrics(plugins, settings.slow_statement_ms)
        self.checker = HealthChecker(backend, settings)
        #: role -> the synchronous engine (an async engine's ``sync_engine``).
        self.engines: dict[str, Engine] = {}
        self._probe_urls: dict[str, URL] = {}
        self._guards: dict[str, PoolGuard] = {}

    def create_engine(self, url: URL, role: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """An instrumented ``Engine`` (``AsyncEngine`` in async mode) on ``url`` (the
        sync driver's URL; an async driver's URL is accepted too). ``overrides`` update
        the backend's tuning (replica pools); the hook is told "replica" for replicas."""
        url, served = self._urls(url)
        try:
            options = engine_options(self.backend, served, self.settings, is_async=self.is_async)
            options.update(overrides or {})
            install_policy = round_trip_policy(options, self.settings.ping_after)
            made = (create_async_engine if self.is_async else create_engine)(served, **options)
        except (exc.NoSuchModuleError, ImportError) as error:
            raise missing_driver(error, self.backend, served) from error
        engine: Engine = made.sync_engine if isinstance(made, AsyncEngine) else made
        install_policy(engine)
        self.metrics.attach(engine, role)
        self._guards[role] = PoolGuard(engine, self.backend, self.settings, role)
        instrument(engine, self.backend, self.plugins, served, role.partition(":")[0])
        self.engines[role] = engine
        self._probe_urls[role] = url
        return made

    def _urls(self, url: URL) -> tuple[URL, URL]:
        """(the sync driver's URL, the URL the engine is created on)."""
        if not self.is_async:
            return url, url
        if url.get_driver_name() == self.backend.async_driver:
            return self.backend.normalize_url(url.set(drivername=url.get_backend_name())), url
        return url, self.backend.async_url(url)

    # -- health and metrics -----------------------------------------------------------

    def health(self, migrations: MigrationState | None = None) -> HealthReport:
        """Probe every engine on connections of its own, within the deadline; add pool
        use and what the pool guard found."""
        pools = {
            role: {**pool_usage(engine), **self._guards[role].report()}
            for role, engine in self.engines.items()
        }
        return check(self.checker, self._probe_urls, pools, migrations)

    def on_retry(self, role: str = "primary") -> OnRetry:
        """The retry callback that counts retries of units of work on ``role``."""
        return lambda error, _attempt: self.metrics.retry(role, error)

    # -- units of work ----------------------------------------------------------------

    def retryable(self, idempotent: bool) -> Callable[[BaseException], bool]:
        """Whether a failed unit of work is run again: transient errors, and a lost
        COMMIT only when the unit is ``idempotent``."""

        def retryable(error: BaseException) -> bool:
            if isinstance(error, CommitOutcomeUnknown):
                return idempotent
            return is_transient(self.backend, error)

        return retryable

    def translate(
        self, error: BaseException, bind: Callable[[], Any], writes: bool
    ) -> BaseException | None:
        """storelayer's error for ``error`` raised in a unit of work (``bind`` gives the
        session's engine), or None to raise it as it is."""
        if isinstance(error, StorelayerError):
            return None  # already storelayer's (some are SQLAlchemy errors too)
        if isinstance(error, exc.IntegrityError):
            return conflict_from(error, self.backend)
        if isinstance(error, exc.DataError):
            return invalid_value_from(error, self.backend)
        if isinstance(error, (exc.TimeoutError, exc.DBAPIError)):
            return explained(error, self.backend, bind(), self.engines, writes)
        return None

    def commit_marker(self, session: Any) -> Any:
        """What names the transaction of a read-write ``Session`` (sync) before its
        COMMIT, where the backend can be asked about it afterwards
        (``features.commit_outcome``); else None, without a round trip."""
        if not self.backend.features.commit_outcome:
            return None
        return self.backend.ops.commit_marker(session.connection())

    @property
    def engine(self) -> Engine:
        """The primary's synchronous engine."""
        return self.engines["primary"]

    def dispose(self) -> None:
        """Close the health probes' engines (the pools belong to their databases)."""
        self.checker.dispose()


@contextmanager
def opened(
    url: str | URL, *, backend: str | None = None, plugins: PluginManager | None = None
) -> Iterator[EngineCore]:
    """A sync ``EngineCore`` with the primary engine on ``url``, closed after the block:
    how tools below the databases (copy, backup verification) open a database."""
    settings, chosen, manager = resolve(url, None, backend, plugins, {})
    core = EngineCore(settings, chosen, manager, is_async=False)
    core.create_engine(core.url, "primary")
    try:
        yield core
    finally:
        core.engine.dispose()
        core.dispose()
