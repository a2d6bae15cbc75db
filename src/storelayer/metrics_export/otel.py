"""OpenTelemetry metrics of a database, named after OpenTelemetry's semantic conventions
for database clients (``pip install 'storelayer[otel]'``)::

    from storelayer.metrics_export import otel

    instrumentation = otel.instrument(db)    # the global MeterProvider, or meter_provider=
    ...
    instrumentation.uninstrument()

Every statement of every engine (primary and replicas) is one ``db.client.operation.duration``
measurement, timed by the engine's own metrics clock; the pool's connections, limits and
timeouts, and storelayer's retries and lost connections, are observed when the reader
collects. Attributes name the system, database, server and operation, never SQL text,
parameters or a password.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from storelayer import __version__
from storelayer.metrics import statement_started
from storelayer.metrics_export.sources import (
    EngineSource,
    PoolState,
    operation_name,
    pool_state,
    sources,
)

__all__ = ["DURATION_BUCKETS", "Instrumentation", "instrument"]

#: The bucket boundaries (seconds) the conventions advise for operation durations.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
POOL = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
#: The pool's instruments: name -> (unit, description).
POOL_INSTRUMENTS = {
    "db.client.connection.count": ("{connection}", "Connections by state (used, idle)."),
    "db.client.connection.max": ("{connection}", "Most connections open at once."),
    "db.client.connection.idle.max": ("{connection}", "Most idle connections kept."),
}
#: What each instrument reads from the pool, with the attributes of the reading.
POOL_READINGS: tuple[tuple[str, Callable[[PoolState], int], dict[str, str]], ...] = (
    ("db.client.connection.count", lambda p: p.used, {STATE: "used"}),
    ("db.client.connection.count", lambda p: p.idle, {STATE: "idle"}),
    ("db.client.connection.max", lambda p: p.max, {}),
    ("db.client.connection.idle.max", lambda p: p.idle_max, {}),
)


class Instrumentation:
    """The instruments of one ``MeterProvider``, and the databases they report on."""

    def __init__(self, meter: Meter) -> None:
        self.sources: list[tuple[EngineSource, Any]] = []
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._listeners: list[tuple[Any, str, Callable[..., None]]] = []
        for name, (unit, text) in POOL_INSTRUMENTS.items():
            meter.create_observable_up_down_counter(
                name, [self._pool_callback(name)], unit=unit, description=text
            )
        meter.create_observable_counter(
            "db.client.connection.timeouts", [self._timeouts], unit="{timeout}",
            description="Connection checkouts that timed out waiting for the pool.",
        )
        for kind, unit, text in (
            ("retries", "{retry}", "Units of work retried after a transient error."),
            ("disconnects", "{disconnect}", "Statements that failed on a lost connection."),
        ):
            meter.create_observable_counter(
                f"storelayer.client.{kind}", [self._counter_callback(kind)], unit=unit,
                description=text,
            )

    # -- wiring -----------------------------------------------------------------------

    def add(self, db: Any) -> None:
        """Report on ``db``'s engines from now on."""
        for source in sources(db):
            self.sources.append((source, db))
            self._listen(source.engine, "after_cursor_execute", self._on_statement(source))
            self._listen(source.engine, "handle_error", self._on_error(source))

    def _listen(self, engine: Any, name: str, listener: Callable[..., None]) -> None:
        event.listen(engine, name, listener)
        self._listeners.append((engine, name, listener))

    def uninstrument(self) -> None:
        """Stop measuring and observing every database added."""
        for engine, name, listener in self._listeners:
            event.remove(engine, name, listener)
        self._listeners.clear()
        self.sources.clear()

    # -- measurements -----------------------------------------------------------------

    def _record(self, source: EngineSource, context: Any, sql: str | None, error: str | None
                ) -> None:
        started = statement_started(context)
        if started is None:
            return
        attributes: dict[str, str | int] = {**source.attributes, "storelayer.role": source.role}
        operation = operation_name(sql or "")
        if operation:
            attributes["db.operation.name"] = operation
        if error:
            attributes["error.type"] = error
        self.duration.record(time.perf_counter() - started, attributes)

    def _on_statement(self, source: EngineSource) -> Callable[..., None]:
        def after(_conn: Any, _cur: Any, sql: str, _p: Any, context: Any, _many: Any) -> None:
            self._record(source, context, sql, None)

        return after

    def _on_error(self, source: EngineSource) -> Callable[[ExceptionContext], None]:
        def on_error(context: ExceptionContext) -> None:
            kind = type(context.original_exception)
            error = f"{kind.__module__}.{kind.__qualname__}"
            self._record(source, context.execution_context, context.statement, error)

        return on_error

    # -- observations -----------------------------------------------------------------

    def _pool_callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        readings = [(read, extra) for n, read, extra in POOL_READINGS if n == name]

        def observe(_options: CallbackOptions) -> Iterator[Observation]:
            for source, _db in list(self.sources):
                state = pool_state(source.engine)
                for read, extra in readings:
                    yield Observation(read(state), {POOL: source.pool_name, **extra})

        return observe

    def _timeouts(self, _options: CallbackOptions) -> Iterator[Observation]:
        for source, _db in list(self.sources):
            yield Observation(pool_state(source.engine).timeouts, {POOL: source.pool_name})

    def _counter_callback(self, kind: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterator[Observation]:
            for source, db in list(self.sources):
                counts = db.metrics()["engines"].get(source.role, {})
                attributes = {**source.attributes, "storelayer.role": source.role}
                yield Observation(int(counts.get(kind, 0)), attributes)

        return observe


#: One set of instruments per provider: an instrument name is created once per meter.
_INSTRUMENTS: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()


def instrument(db: Any, meter_provider: MeterProvider | None = None) -> Instrumentation:
    """Report ``db``'s metrics (a ``Database`` or an ``AsyncDatabase``) through
    ``meter_provider`` (default: the global one); returns the provider's
    :class:`Instrumentation`, whose ``uninstrument()`` stops it."""
    provider = meter_provider or otel_metrics.get_meter_provider()
    instrumentation = _INSTRUMENTS.get(provider)
    if instrumentation is None:
        meter = provider.get_meter("storelayer", __version__)
        instrumentation = _INSTRUMENTS[provider] = Instrumentation(meter)
    instrumentation.add(db)
    return instrumentation
