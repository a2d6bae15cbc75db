"""A ``prometheus_client`` collector of a database's metrics (``pip install
'storelayer[prometheus]'``)::

    from prometheus_client import REGISTRY, start_http_server
    from storelayer.metrics_export.prometheus import StorelayerCollector

    REGISTRY.register(StorelayerCollector(db))
    start_http_server(9100)

Each scrape reads ``db.metrics()`` and the pools as they are then: counters of statements,
errors, lost connections, retries, pool checkouts, waits and timeouts; gauges of the
connections in use and idle, the pool's limit, and the latency percentiles of the recent
statements. Labels name the backend, the engine's role and its pool, never SQL text,
parameters or a password.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storelayer.metrics_export.sources import EngineSource, pool_state, sources

__all__ = ["COUNTERS", "StorelayerCollector"]

LABELS = ("db_system", "role", "pool")
#: ``db.metrics()`` counters per engine: (name without ``_total``, key, help).
COUNTERS = (
    ("statements", "statements", "Statements executed."),
    ("errors", "errors", "Statements that failed."),
    ("disconnects", "disconnects", "Statements that failed on a lost connection."),
    ("retries", "retries", "Units of work retried after a transient error."),
)
#: ``latency_ms`` keys and the quantile each one is.
QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}


class StorelayerCollector(Collector):
    """Collects one database's metrics on every scrape; ``namespace`` prefixes names."""

    def __init__(self, db: Any, namespace: str = "storelayer") -> None:
        self.db = db
        self.namespace = namespace

    def _name(self, name: str) -> str:
        return f"{self.namespace}_{name}" if self.namespace else name

    def collect(self) -> Iterator[Metric]:
        engines = self.db.metrics()["engines"]
        found = [(s, engines.get(s.role, {})) for s in sources(self.db)]
        yield from self._counters(found)
        yield from self._pool(found)
        yield self._latency(found)

    @staticmethod
    def _labels(source: EngineSource) -> list[str]:
        return [str(source.attributes["db.system.name"]), source.role, source.pool_name]

    def _counters(self, found: list[tuple[EngineSource, dict[str, Any]]]) -> Iterator[Metric]:
        for name, key, text in COUNTERS:
            family = CounterMetricFamily(self._name(name), text, labels=LABELS)
            for source, counts in found:
                family.add_metric(self._labels(source), float(counts.get(key, 0)))
            yield family

    def _pool(self, found: list[tuple[EngineSource, dict[str, Any]]]) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            self._name("pool_connections"), "Pooled connections by state (used, idle).",
            labels=(*LABELS, "state"),
        )
        limit = GaugeMetricFamily(
            self._name("pool_max_connections"), "Most connections open at once.", labels=LABELS
        )
        checkouts = CounterMetricFamily(
            self._name("pool_checkouts"), "Connections taken from the pool.", labels=LABELS)
        waits = CounterMetricFamily(
            self._name("pool_waits"), "Checkouts that waited for a connection.", labels=LABELS)
        wait_seconds = CounterMetricFamily(
            self._name("pool_wait_seconds"), "Time checkouts waited.", labels=LABELS)
        timeouts = CounterMetricFamily(
            self._name("pool_timeouts"), "Checkouts that timed out.", labels=LABELS)
        for source, counts in found:
            labels, state = self._labels(source), pool_state(source.engine)
            connections.add_metric([*labels, "used"], state.used)
            connections.add_metric([*labels, "idle"], state.idle)
            limit.add_metric(labels, state.max)
            checkouts.add_metric(labels, float(counts.get("pool", {}).get("checkouts", 0)))
            waits.add_metric(labels, state.waits)
            wait_seconds.add_metric(labels, state.wait_seconds)
            timeouts.add_metric(labels, state.timeouts)
        yield from (connections, limit, checkouts, waits, wait_seconds, timeouts)

    def _latency(self, found: list[tuple[EngineSource, dict[str, Any]]]) -> Metric:
        family = GaugeMetricFamily(
            self._name("statement_latency_seconds"),
            "Latency percentiles of the recent statements (quantile 1 is the slowest).",
            labels=(*LABELS, "quantile"),
        )
        for source, counts in found:
            for key, quantile in QUANTILES.items():
                ms = counts.get("latency_ms", {}).get(key)
                if ms is not None:
                    family.add_metric([*self._labels(source), quantile], ms / 1000)
        return family
