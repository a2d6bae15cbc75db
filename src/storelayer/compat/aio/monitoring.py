"""``storelayer.compat.aio.monitoring``: ``DatabaseMonitor`` reads storelayer's metrics
(``Database.metrics()``) as the async Database API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storelayer._shapes import MappingAccess
from storelayer.compat.aio.connection import DatabaseConnectionManager

__all__ = ["DatabaseMetrics", "DatabaseMonitor", "SlowQuery"]


@dataclass(frozen=True)
class DatabaseMetrics(MappingAccess):
    """The primary's counters since the database opened (or ``reset()``)."""

    active_connections: int
    idle_connections: int
    query_count: int
    error_count: int
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None


@dataclass(frozen=True)
class SlowQuery(MappingAccess):
    """A statement that took at least the slow threshold; ``sql`` has its literals
    redacted (no value is kept)."""

    sql: str
    duration_ms: float
    at: float


class DatabaseMonitor:
    """Metrics and slow statements of a ``DatabaseConnectionManager``'s database."""

    def __init__(self, manager: DatabaseConnectionManager) -> None:
        self.manager = manager

    def _primary(self) -> dict[str, Any]:
        primary: dict[str, Any] = self.manager.database.metrics()["engines"]["primary"]
        return primary

    async def get_metrics(self) -> DatabaseMetrics:
        """Connections in use and idle, statements run, errors, mean and p95 latency."""
        primary = self._primary()
        pool, latency = primary["pool"], primary["latency_ms"]
        return DatabaseMetrics(
            active_connections=int(pool.get("checked_out", 0)),
            idle_connections=int(pool.get("idle", 0)),
            query_count=int(primary["statements"]),
            error_count=int(primary["errors"]),
            avg_response_time_ms=latency["mean"],
            p95_response_time_ms=latency["p95"],
        )

    async def get_slow_queries(self, threshold_ms: float = 1000) -> list[SlowQuery]:
        """The recent statements that took ``threshold_ms`` or more, slowest first.
        Only statements at or above the database's slow threshold are kept
        (``DatabaseConfig.slow_query_ms``, default 500 ms)."""
        kept = [
            SlowQuery(sql=item["sql"], duration_ms=item["ms"], at=item["at"])
            for item in self._primary()["slow_statements"]
            if item["ms"] >= threshold_ms
        ]
        return sorted(kept, key=lambda query: query.duration_ms, reverse=True)

    def reset(self) -> None:
        """Count from zero again."""
        self.manager.database.reset_metrics()
