"""Health and readiness: per engine (the primary and each replica) whether it answers,
how fast, which server version, how full its pool is and how far a replica lags; then
whether the application may take traffic (migrations at head, replicas within the lag
threshold).

A probe never waits longer than its deadline, even on a server that is stopped but not
dead, and never uses the application's pool: it connects through an engine of its own
without a pool, on a thread of its own, and at most one probe per engine is waiting at
any time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import create_engine, exc, pool, text
from sqlalchemy.engine import URL, Connection, Engine

from storelayer._conflicts import one_line
from storelayer._shapes import MappingAccess
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url

HEALTHY = "healthy"
DEGRADED = "degraded"
DOWN = "down"
PRIMARY_IS_A_REPLICA = "primary is a read-only replica: DATABASE_URL must name the primary"


@dataclass(frozen=True)
class EngineHealth(MappingAccess):
    """What one engine's probe found."""

    role: str
    url: str
    reachable: bool
    latency_ms: float | None = None
    connect_ms: float | None = None
    server_version: str | None = None
    replica_lag: float | None = None
    pool: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class HealthReport(MappingAccess):
    """The answer of ``Database.health()``. ``status`` is ``healthy``, ``degraded``
    (it answers, but something needs attention: see ``problems``) or ``down`` (the
    primary does not answer); ``healthy`` is true only for ``healthy``."""

    healthy: bool
    backend: str
    url: str
    latency_ms: float | None
    server_version: str | None
    error: str | None = None
    status: str = HEALTHY
    ready: bool = True
    problems: tuple[str, ...] = ()
    engines: tuple[EngineHealth, ...] = ()
    readiness: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


class MigrationState(Protocol):
    """What readiness needs from a ``MigrationManager``."""

    def current(self) -> tuple[str, ...]: ...

    def heads(self) -> tuple[str, ...]: ...


class _Probe:
    """One probe running on its own thread; it keeps its result when it finishes."""

    def __init__(self, work: Callable[[], dict[str, Any]]) -> None:
        self.started = time.monotonic()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], dict[str, Any]]) -> None:
        try:
            self.result = work()
        except BaseException as error:
            self.error = error


def measure(engine: Engine, backend: Backend) -> dict[str, Any]:
    """Connect, time ``SELECT 1``, read the server version and replica lag."""
    started = time.perf_counter()
    with engine.connect() as conn:
        connected = time.perf_counter()
        conn.execute(text("SELECT 1"))
        answered = time.perf_counter()
        version = backend.ops.server_version(conn)
        lag = _replica_lag(conn, backend)
    return {
        "connect_ms": round((connected - started) * 1000, 3),
        "latency_ms": round((answered - connected) * 1000, 3),
        "server_version": version,
        "replica_lag": lag,
    }


def _replica_lag(conn: Connection, backend: Backend) -> float | None:
    """The lag, or None when the account may not ask (MySQL needs a privilege)."""
    try:
        return backend.replication.lag(conn)
    except exc.DBAPIError:
        return None


class HealthChecker:
    """Probes the engines of one database within ``settings.health_timeout``."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.deadline = settings.health_timeout
        self._engines: dict[str, Engine] = {}
        self._waiting: dict[str, _Probe] = {}
        self._lock = threading.Lock()

    def probe_engine(self, role: str, url: URL) -> Engine:
        """An engine without a pool on ``url`` (the sync driver's), connecting within
        the deadline."""
        with self._lock:
            if role not in self._engines:
                quick = replace(self.settings, connect_timeout=max(self.deadline, 1.0))
                tuning = self.backend.engine_options(url, quick)
                engine = create_engine(
                    url,
                    poolclass=pool.NullPool,
                    connect_args=tuning.get("connect_args", {}),
                    hide_parameters=True,
                )
                # The backend's own connecting (a host list) and setup, as in use.
                self.backend.configure_engine(engine)
                self._engines[role] = engine
            return self._engines[role]

    def probe_all(self, urls: Mapping[str, URL]) -> list[EngineHealth]:
        """Probe every engine (role -> its URL) at once; all answers come within one
        deadline."""
        started = {role: self._start(role, url) for role, url in urls.items()}
        ends_at = time.monotonic() + self.deadline
        return [self._finish(role, urls[role], probe, ends_at) for role, probe in started.items()]

    def _start(self, role: str, url: URL) -> _Probe | str:
        with self._lock:
            waiting = self._waiting.get(role)
            if waiting is not None and waiting.thread.is_alive():
                since = time.monotonic() - waiting.started
                return f"no answer to the health probe sent {since:.1f}s ago (server hung?)"
        probe_engine = self.probe_engine(role, url)
        return _Probe(lambda: measure(probe_engine, self.backend))

    def _finish(self, role: str, raw_url: URL, probe: _Probe | str, ends_at: float) -> EngineHealth:
        url = mask_url(raw_url)
        if isinstance(probe, str):
            return EngineHealth(role, url, False, error=probe)
        probe.thread.join(max(0.0, ends_at - time.monotonic()))
        if probe.thread.is_alive():
            with self._lock:
                self._waiting[role] = probe
            return EngineHealth(
                role, url, False, error=f"no answer within {self.deadline:g}s (server hung?)"
            )
        if probe.error is not None or probe.result is None:
            message = one_line(probe.error or RuntimeError("probe failed"), raw_url.password)
            return EngineHealth(role, url, False, error=message)
        return EngineHealth(role, url, True, **probe.result)

    def within_deadline(self, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work`` on its own thread; an ``error`` entry when it fails or is late."""
        current = _Probe(work)
        current.thread.join(self.deadline)
        if current.thread.is_alive():
            return {"error": f"no answer within {self.deadline:g}s"}
        if current.error is not None or current.result is None:
            return {"error": one_line(current.error or RuntimeError("check failed"))}
        return current.result

    def dispose(self) -> None:
        """Close the probe engines."""
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.dispose()


def migration_readiness(migrations: MigrationState) -> dict[str, Any]:
    """Whether the database is at the migration scripts' heads."""
    current, heads = migrations.current(), migrations.heads()
    return {"at_head": set(current) == set(heads), "current": list(current), "heads": list(heads)}


def fitness_problem(
    role: str, *, unreachable: str | None, lag: float | None, max_lag: float, lag_measured: bool
) -> str | None:
    """Why the engine ``role`` ("primary", "replica:0"...) may not serve, in words; None
    when it may. The one rule of health reports and of read routing (``ReplicaSet``).

    ``unreachable``: why it cannot be reached (None: it answers); ``lag``: seconds
    behind its primary (None: unknown); ``lag_measured``: the backend's
    ``features.replicas``. Without lag measurement (SQLite) a reachable replica is fit;
    with it, an unknown lag (replication stopped) is unfit, never "0 s behind". A
    primary that reports a lag is a replica itself."""
    if unreachable is not None:
        return f"{role} unreachable: {unreachable}"
    if role == "primary":
        return None if lag is None else PRIMARY_IS_A_REPLICA
    if not lag_measured:
        return None
    if lag is None:
        return f"{role} replication lag unknown (replication stopped?)"
    if lag > max_lag:
        return f"{role} is {lag:.1f}s behind (threshold {max_lag:g}s)"
    return None


def fitness(item: EngineHealth, max_lag: float, lag_measured: bool) -> str | None:
    """``fitness_problem`` of what one probe found."""
    unreachable = None if item.reachable else str(item.error)
    lag = item.replica_lag
    return fitness_problem(
        item.role, unreachable=unreachable, lag=lag, max_lag=max_lag, lag_measured=lag_measured
    )


def engine_problems(item: EngineHealth, max_lag: float, lag_measured: bool) -> list[str]:
    """What is wrong with one engine, in words."""
    unfit = fitness(item, max_lag, lag_measured)
    if not item.reachable:
        return [str(unfit)]
    problems = []
    pool_use = item.pool
    capacity = pool_use.get("size", 0) + pool_use.get("max_overflow", 0)
    if capacity and pool_use.get("checked_out", 0) >= capacity:
        problems.append(f"{item.role} pool fully in use ({capacity} connections)")
    if pool_use.get("warning"):
        problems.append(f"{item.role} pool: {pool_use['warning']}")
    return problems if unfit is None else [*problems, unfit]


def report(
    backend: Backend,
    engines: list[EngineHealth],
    migrations: dict[str, Any] | None,
    max_lag: float,
) -> HealthReport:
    """The overall report: ``down`` when the primary does not answer, ``degraded`` when
    anything else is wrong; ``ready`` when the primary answers, the migrations (if
    checked) are at head and every replica is within the lag threshold."""
    primary = next(e for e in engines if e.role == "primary")
    measured = backend.features.replicas
    problems = [p for e in engines for p in engine_problems(e, max_lag, measured)]
    if migrations and migrations.get("error"):
        problems.append(f"migrations unknown: {migrations['error']}")
    elif migrations and not migrations.get("at_head"):
        problems.append("migrations not at head: run 'storelayer migrate upgrade'")
    replicas_ok = all(fitness(e, max_lag, measured) is None for e in engines if e.role != "primary")
    migrations_ok = migrations is None or bool(migrations.get("at_head"))
    status = DOWN if not primary.reachable else DEGRADED if problems else HEALTHY
    readiness = {
        "migrations": migrations or {"checked": False},
        "replicas_within_lag": replicas_ok,
        "max_replica_lag": max_lag,
    }
    return HealthReport(
        healthy=status == HEALTHY,
        backend=backend.name,
        url=primary.url,
        latency_ms=primary.latency_ms,
        server_version=primary.server_version,
        error=primary.error,
        status=status,
        ready=primary.reachable and replicas_ok and migrations_ok,
        problems=tuple(problems),
        engines=tuple(engines),
        readiness=readiness,
    )


def check(
    checker: HealthChecker,
    urls: Mapping[str, URL],
    pools: Mapping[str, dict[str, Any]],
    migrations: MigrationState | None,
) -> HealthReport:
    """Probe the engines (role -> URL; ``primary`` first), add each pool's use from
    ``pools`` and, when given, whether ``migrations`` are at head."""
    found = [replace(item, pool=pools.get(item.role, {})) for item in checker.probe_all(urls)]
    state = None
    if migrations is not None and found[0].reachable:
        state = {
            "checked": True,
            **checker.within_deadline(lambda: migration_readiness(migrations)),
        }
    return report(checker.backend, found, state, checker.settings.max_replica_lag)
