"""Counters and timings per engine: statements, errors, retries, latency percentiles,
slow statements (their SQL text with literals redacted, never their parameters) and
pool checkouts, waits and overflow.

``Database.metrics()`` returns a snapshot. An exporter (OpenTelemetry, Prometheus...)
subscribes through the ``storelayer_metrics_event`` hook without the core depending on
it: each statement, error, retry and slow statement becomes a :class:`MetricsEvent`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import QueuePool

from storelayer._pool import pool_usage
from storelayer.hookspecs import MetricsEvent as MetricsEvent  # its home before
from storelayer.plugins import PluginManager

logger = logging.getLogger("storelayer.metrics")
slow_logger = logging.getLogger("storelayer.slow")

#: Statement durations kept per engine for the percentiles.
RESERVOIR = 2048
#: Slow statements kept per engine (the newest).
SLOW_KEPT = 50
#: Longest SQL text kept for a slow statement.
MAX_SQL_LENGTH = 1000
_STARTED = "_storelayer_started"

_STRING_LITERAL = re.compile(r"(?:\b[EXBNexbn])?'(?:[^'\\]|''|\\.)*'")
_NUMBER_LITERAL = re.compile(r"(?<![\w$.%])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")


def redact_sql(statement: str) -> str:
    """``statement`` on one line with string and number literals replaced by ``?``:
    bound parameters are never part of it, and literals written into the SQL text
    (``WHERE password = 'x'``) do not leak either."""
    text = _STRING_LITERAL.sub("'?'", statement)
    text = _NUMBER_LITERAL.sub("?", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_SQL_LENGTH else text[: MAX_SQL_LENGTH - 3] + "..."


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass
class EngineMetrics:
    """Everything counted for one engine."""

    statements: int = 0
    errors: int = 0
    disconnects: int = 0
    retries: int = 0
    checkouts: int = 0
    overflow_checkouts: int = 0
    peak_in_use: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    slow: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SLOW_KEPT))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def clear(self) -> None:
        """Back to zero."""
        with self.lock:
            self.statements = self.errors = self.disconnects = self.retries = 0
            self.checkouts = self.overflow_checkouts = self.peak_in_use = 0
            self.durations.clear()
            self.slow.clear()

    def latency_ms(self) -> dict[str, float | None]:
        """p50/p95/p99/max and the mean of the recent statements, in milliseconds."""
        with self.lock:
            values = sorted(self.durations)
        shares = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}
        mean = round(sum(values) / len(values) * 1000, 3) if values else None
        return {
            **{
                name: None if (v := percentile(values, share)) is None else round(v * 1000, 3)
                for name, share in shares.items()
            },
            "mean": mean,
        }

    def snapshot(self, engine: Engine) -> dict[str, Any]:
        """A JSON-ready copy, with the pool's current use."""
        latency = self.latency_ms()
        with self.lock:
            counts = {
                "statements": self.statements,
                "errors": self.errors,
                "disconnects": self.disconnects,
                "retries": self.retries,
                "slow_statements": list(self.slow),
            }
            pool = {
                "checkouts": self.checkouts,
                "overflow_checkouts": self.overflow_checkouts,
                "peak_in_use": self.peak_in_use,
            }
        return {**counts, "latency_ms": latency, "pool": {**pool, **pool_usage(engine)}}


class Metrics:
    """Collects :class:`EngineMetrics` for every engine of a database."""

    def __init__(self, plugins: PluginManager, slow_statement_ms: float) -> None:
        self.slow_seconds = slow_statement_ms / 1000
        self._hook = plugins.hook.storelayer_metrics_event
        self._engines: dict[str, tuple[Engine, EngineMetrics]] = {}
        self._exporter_failed = False

    # -- wiring -----------------------------------------------------------------------

    def attach(self, engine: Engine, role: str) -> None:
        """Listen to ``engine``'s statements, errors and checkouts as ``role``."""
        counts = EngineMetrics()
        self._engines[role] = (engine, counts)
        event.listen(engine, "before_cursor_execute", _start_clock)
        event.listen(engine, "after_cursor_execute", self._statement_listener(role, counts))
        event.listen(engine, "handle_error", self._error_listener(role, counts))
        event.listen(engine, "checkout", self._checkout_listener(engine, counts))

    def _statement_listener(self, role: str, counts: EngineMetrics) -> Any:
        def after(_conn: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
            started = getattr(context, _STARTED, None)
            if started is None:
                return
            self.statement(role, counts, statement, time.perf_counter() - started)

        return after

    def _error_listener(self, role: str, counts: EngineMetrics) -> Any:
        def on_error(context: ExceptionContext) -> None:
            with counts.lock:
                counts.errors += 1
                counts.disconnects += int(context.is_disconnect)
            error = type(context.original_exception).__name__
            self._emit(MetricsEvent("error", role, error=error, disconnect=context.is_disconnect))

        return on_error

    def _checkout_listener(self, engine: Engine, counts: EngineMetrics) -> Any:
        def on_checkout(*_args: Any) -> None:
            current = engine.pool
            in_use = current.checkedout() if isinstance(current, QueuePool) else 0
            overflow = isinstance(current, QueuePool) and in_use > current.size()
            with counts.lock:
                counts.checkouts += 1
                counts.overflow_checkouts += int(overflow)
                counts.peak_in_use = max(counts.peak_in_use, in_use)

        return on_checkout

    # -- recording --------------------------------------------------------------------

    def statement(self, role: str, counts: EngineMetrics, sql: str, seconds: float) -> None:
        """Count one statement that took ``seconds``."""
        slow = seconds >= self.slow_seconds
        with counts.lock:
            counts.statements += 1
            counts.durations.append(seconds)
        if slow:
            self._slow(role, counts, sql, seconds)
        if self._listening():
            self._emit(MetricsEvent("statement", role, seconds, redact_sql(sql)))

    def _slow(self, role: str, counts: EngineMetrics, sql: str, seconds: float) -> None:
        text = redact_sql(sql)
        entry = {"role": role, "ms": round(seconds * 1000, 3), "at": time.time(), "sql": text}
        with counts.lock:
            counts.slow.append(entry)
        slow_logger.warning("slow statement on %s (%.1f ms): %s", role, seconds * 1000, text)
        self._emit(MetricsEvent("slow_statement", role, seconds, text))

    def retry(self, role: str, error: BaseException) -> None:
        """Count one retry of a unit of work on ``role`` after ``error``."""
        counts = self._engines[role][1] if role in self._engines else None
        if counts is not None:
            with counts.lock:
                counts.retries += 1
        self._emit(MetricsEvent("retry", role, error=type(error).__name__))

    # -- reading ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every engine's metrics, keyed by role."""
        engines = {
            role: counts.snapshot(engine) for role, (engine, counts) in self._engines.items()
        }
        return {"slow_statement_ms": self.slow_seconds * 1000, "engines": engines}

    def reset(self) -> None:
        """Start counting from zero (the pool's live state is not reset)."""
        for _, counts in self._engines.values():
            counts.clear()

    # -- exporters --------------------------------------------------------------------

    def _listening(self) -> bool:
        return bool(self._hook.get_hookimpls())

    def _emit(self, item: MetricsEvent) -> None:
        if not self._listening():
            return
        try:
            self._hook(event=item)
        except Exception as error:  # an exporter must never break the application
            if not self._exporter_failed:
                self._exporter_failed = True
                logger.warning("a metrics exporter failed: %s", type(error).__name__)


def statement_started(context: Any) -> float | None:
    """When the statement of an execution context started (``time.perf_counter()``), as
    the engine's metrics clocked it; None for a context they did not see. An exporter
    that listens to an engine's ``after_cursor_execute`` or ``handle_error`` events reads
    the duration from it instead of timing statements a second time."""
    return getattr(context, _STARTED, None) if context is not None else None


def _start_clock(_conn: Any, _cur: Any, _stmt: str, _p: Any, context: Any, _m: Any) -> None:
    if context is not None:
        setattr(context, _STARTED, time.perf_counter())
