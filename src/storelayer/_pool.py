"""Pool guardrails: waits measured, exhaustion explained, the pool checked against the
server's limits at start-up and recycled before the server drops idle connections."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, QueuePool

from storelayer.backend import Backend, ServerLimits
from storelayer.config import Settings, mask_url
from storelayer.errors import PoolExhausted

logger = logging.getLogger("storelayer.pool")

#: At most this share of the server's idle timeout passes before a connection is
#: recycled (and never more than five minutes before it).
RECYCLE_MARGIN = 0.1
MAX_RECYCLE_MARGIN = 300.0


@dataclass
class PoolWaits:
    """Checkouts that found every connection busy, and how long they waited."""

    waited: int = 0
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0
    timeouts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, seconds: float, *, timed_out: bool) -> None:
        """Count one checkout that had to wait ``seconds``."""
        with self._lock:
            self.waited += 1
            self.wait_seconds += seconds
            self.max_wait_seconds = max(self.max_wait_seconds, seconds)
            self.timeouts += int(timed_out)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        with self._lock:
            return {
                "waits": self.waited,
                "wait_seconds": round(self.wait_seconds, 6),
                "max_wait_seconds": round(self.max_wait_seconds, 6),
                "timeouts": self.timeouts,
            }


class _MeasuredCheckout:
    """Mixin for ``QueuePool``: times checkouts that must wait for a connection."""

    waits: PoolWaits
    _max_overflow: int
    _overflow: int

    if TYPE_CHECKING:

        def checkedin(self) -> int: ...  # QueuePool's

    def _do_get(self) -> Any:
        full = self._max_overflow > -1 and self._overflow >= self._max_overflow
        must_wait = full and self.checkedin() == 0
        started = time.perf_counter()
        try:
            entry = super()._do_get()  # type: ignore[misc]
        except exc.TimeoutError:
            self.waits.record(time.perf_counter() - started, timed_out=True)
            raise
        if must_wait:
            self.waits.record(time.perf_counter() - started, timed_out=False)
        return entry

    def recreate(self) -> Any:
        fresh = super().recreate()  # type: ignore[misc]
        fresh.waits = self.waits  # engine.dispose() keeps the counts
        return fresh


class MeasuredQueuePool(_MeasuredCheckout, QueuePool):
    """``QueuePool`` that counts the checkouts that waited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = PoolWaits()


class MeasuredAsyncQueuePool(_MeasuredCheckout, AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` that counts the checkouts that waited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = PoolWaits()


_MEASURED: dict[type[Pool], type[Pool]] = {
    QueuePool: MeasuredQueuePool,
    AsyncAdaptedQueuePool: MeasuredAsyncQueuePool,
}


def with_measured_pool(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with a plain queue pool swapped for its measured twin."""
    measured = _MEASURED.get(options.get("poolclass"))  # type: ignore[arg-type]
    return {**options, "poolclass": measured} if measured else options


def pool_usage(engine: Engine) -> dict[str, Any]:
    """How full the engine's pool is right now, and how often checkouts waited."""
    current = engine.pool
    usage: dict[str, Any] = {"class": type(current).__name__}
    if isinstance(current, QueuePool):
        usage.update(
            size=current.size(),
            max_overflow=max(current._max_overflow, 0),
            timeout=current.timeout(),
            checked_out=current.checkedout(),
            idle=current.checkedin(),
            overflow=max(current.overflow(), 0),
        )
    waits = getattr(current, "waits", None)
    if isinstance(waits, PoolWaits):
        usage.update(waits.snapshot())
    return usage


def exhausted(engine: Engine, role: str, error: exc.TimeoutError) -> PoolExhausted:
    """The clear error for a checkout that timed out: which pool, its size, overflow and
    timeout, and what to change."""
    current = engine.pool
    size = current.size() if isinstance(current, QueuePool) else 0
    overflow = max(getattr(current, "_max_overflow", 0), 0)
    timeout = current.timeout() if isinstance(current, QueuePool) else 0.0
    return PoolExhausted(
        f"connection pool of the {role} database ({mask_url(engine.url)}) is exhausted: "
        f"all {size + overflow} connections (pool_size={size}, max_overflow={overflow}) "
        f"stayed in use for pool_timeout={timeout:g}s. Keep units of work short and "
        "return sessions promptly, or raise STORELAYER_POOL_SIZE, STORELAYER_MAX_OVERFLOW "
        "or STORELAYER_POOL_TIMEOUT",
        pool_size=size,
        max_overflow=overflow,
        timeout=timeout,
    )


def derived_recycle(idle_timeout: float) -> int:
    """Seconds after which to replace a connection so the server, which closes those
    idle for ``idle_timeout`` seconds, never does it first."""
    margin = min(max(idle_timeout * RECYCLE_MARGIN, 1.0), MAX_RECYCLE_MARGIN)
    return max(1, int(idle_timeout - margin))


def capacity_warning(
    pool_size: int, max_overflow: int, processes: int, max_connections: int
) -> str | None:
    """Why the configured pools may not fit the server, or None when they do."""
    wanted = (pool_size + max_overflow) * processes
    if wanted <= max_connections:
        return None
    return (
        f"the pool may open {wanted} connections ((pool_size={pool_size} + "
        f"max_overflow={max_overflow}) x processes={processes}) but the server accepts "
        f"max_connections={max_connections}; lower STORELAYER_POOL_SIZE or "
        "STORELAYER_MAX_OVERFLOW, set STORELAYER_PROCESSES right, or raise the server's "
        "max_connections"
    )


class PoolGuard:
    """Checks one engine's pool against the server when it first connects."""

    def __init__(self, engine: Engine, backend: Backend, settings: Settings, role: str) -> None:
        self.engine = engine
        self.backend = backend
        self.settings = settings
        self.role = role
        self.limits: ServerLimits | None = None
        self.warning: str | None = None
        self.recycle_source = "configured" if self._recycle_configured() else "backend"
        event.listen(engine, "first_connect", self._first_connect)

    def _recycle_configured(self) -> bool:
        return self.settings.pool_recycle is not None or (
            "pool_recycle" in self.settings.engine_options
        )

    def _first_connect(self, dbapi_connection: Any, _record: Any) -> None:
        if self.settings.pooler is not None:
            # The server behind a pooler sees the pooler's connections, not this pool's.
            return
        try:
            self.limits = self.backend.ops.server_limits(dbapi_connection)
        except Exception as error:  # a guardrail must never break connecting
            logger.debug("server limits of %s unknown: %s", self.role, type(error).__name__)
            return
        self._check_capacity(self.limits)
        self._adapt_recycle(self.limits)

    def _check_capacity(self, limits: ServerLimits) -> None:
        current = self.engine.pool
        if limits.max_connections is None or not isinstance(current, QueuePool):
            return
        self.warning = capacity_warning(
            current.size(),
            max(current._max_overflow, 0),
            self.settings.processes,
            limits.max_connections,
        )
        if self.warning:
            logger.warning("%s database %s: %s", self.role, mask_url(self.engine.url), self.warning)

    def _adapt_recycle(self, limits: ServerLimits) -> None:
        if limits.idle_timeout is None or self._recycle_configured():
            return
        wanted = derived_recycle(limits.idle_timeout)
        current = self.engine.pool
        if current._recycle < 0 or wanted < current._recycle:
            current._recycle = wanted
            self.recycle_source = f"server idle timeout {limits.idle_timeout:g}s"
            logger.info("%s pool_recycle set to %ss from the server", self.role, wanted)

    def report(self) -> dict[str, Any]:
        """What the guard found, for health reports."""
        limits = self.limits or ServerLimits()
        return {
            "recycle": self.engine.pool._recycle,
            "recycle_source": self.recycle_source,
            "server_max_connections": limits.max_connections,
            "server_idle_timeout": limits.idle_timeout,
            "warning": self.warning,
        }
