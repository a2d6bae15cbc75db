"""The OpenTelemetry and Prometheus exporters, read back after real units of work on
every backend: OpenTelemetry through the SDK's ``InMemoryMetricReader``, Prometheus
through ``generate_latest``. What they report must equal what ``db.metrics()`` counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import URL

from storelayer import Conflict, connect_async
from storelayer.backend import Backend
from storelayer.database import Database
from storelayer.metrics_export import otel
from storelayer.metrics_export.prometheus import StorelayerCollector
from storelayer.metrics_export.sources import operation_name, pool_state

NAMES = ["ada", "grace", "edsger"]


@pytest.fixture
def probe(database: Database) -> Iterator[Table]:
    """A table of its own in the backend's scratch database, dropped afterwards."""
    table = Table(
        f"export_probe_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(50), unique=True),
    )
    table.create(database.engine)
    yield table
    table.drop(database.engine)


def units_of_work(db: Database, table: Table) -> None:
    """Three inserts, one read, and one insert that breaks the unique constraint."""
    for name in NAMES:
        with db.session() as s:
            s.execute(insert(table).values(name=name))
    with db.read_session() as s:
        assert len(s.execute(select(table)).all()) == len(NAMES)
    with pytest.raises(Conflict), db.session() as s:
        s.execute(insert(table).values(name=NAMES[0]))


def otel_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def test_operation_names_are_a_few_keywords() -> None:
    assert operation_name("  select * from t") == "SELECT"
    assert operation_name("/* app */ INSERT INTO t VALUES (1)") == "INSERT"
    assert operation_name("frobnicate 'secret'") is None


def test_opentelemetry_reports_operations_and_connections(
    backend: Backend, database: Database, probe: Table, database_url: URL
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    database.reset_metrics()
    instrumentation = otel.instrument(database, meter_provider=provider)
    try:
        units_of_work(database, probe)
        with database.session() as s:  # one connection in use while the reader collects
            s.execute(select(probe.c.id))
            during = otel_points(reader)
        after = otel_points(reader)
    finally:
        instrumentation.uninstrument()
        provider.shutdown()
    counted = database.metrics()["engines"]["primary"]

    durations = after["db.client.operation.duration"]
    for point in durations:
        assert point.attributes["db.system.name"] == backend.name
        assert point.attributes["db.namespace"] == database_url.database
        assert ("server.address" in point.attributes) == backend.features.server
    ok = [p for p in durations if "error.type" not in p.attributes]
    failed = [p for p in durations if "error.type" in p.attributes]
    inserts = [p for p in ok if p.attributes.get("db.operation.name") == "INSERT"]
    # Plus the commit markers, statements like any other (docs/backends/): MySQL/MariaDB
    # insert the connection's row once, then update it; PostgreSQL sends one INSERT ... ON
    # CONFLICT in every read-write unit that reaches COMMIT (the 3 inserts, the select)
    markers = {"mysql": 1, "postgresql": len(NAMES) + 1}.get(backend.dialect, 0)
    assert sum(p.count for p in inserts) == len(NAMES) + markers
    assert all(p.sum > 0 for p in inserts)
    assert sum(p.count for p in ok) == counted["statements"]
    assert sum(p.count for p in failed) == counted["errors"] == 1
    assert failed[0].attributes["db.operation.name"] == "INSERT"
    assert NAMES[0] not in str(failed[0].attributes)

    def connections(points: dict[str, list[Any]]) -> dict[str, int]:
        return {
            p.attributes["db.client.connection.state"]: p.value
            for p in points["db.client.connection.count"]
        }

    assert connections(during)["used"] == 1
    assert connections(after)["used"] == 0
    assert connections(after)["idle"] == pool_state(database.engine).idle >= 1
    [limit] = after["db.client.connection.max"]
    assert limit.value == pool_state(database.engine).max > 0
    [retries] = after["storelayer.client.retries"]
    assert retries.value == counted["retries"]


def test_opentelemetry_reports_an_async_database(backend: Backend, database_url: URL) -> None:
    if not backend.async_driver:
        pytest.skip(f"backend {backend.name!r} declares no async_driver")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    table = Table(f"export_async_{uuid.uuid4().hex[:8]}", MetaData(),
                  Column("id", Integer, primary_key=True))

    async def work() -> int:
        db = connect_async(database_url, backend=backend.name)
        instrumentation = otel.instrument(db, meter_provider=provider)
        try:
            async with db.engine.begin() as connection:
                await connection.run_sync(table.create)
            async with db.session() as s:
                await s.execute(insert(table).values(id=1))
            async with db.engine.begin() as connection:
                await connection.run_sync(table.drop)
            return int(db.metrics()["engines"]["primary"]["statements"])
        finally:
            instrumentation.uninstrument()
            await db.dispose()

    statements = asyncio.run(work())
    durations = otel_points(reader)["db.client.operation.duration"]
    provider.shutdown()
    operations = {p.attributes.get("db.operation.name") for p in durations}
    assert {"CREATE", "INSERT", "DROP"} <= operations
    assert sum(p.count for p in durations) == statements


def test_prometheus_collector_reports_what_db_metrics_counted(
    backend: Backend, database: Database, probe: Table
) -> None:
    registry = CollectorRegistry()
    registry.register(StorelayerCollector(database))
    database.reset_metrics()
    units_of_work(database, probe)
    text = generate_latest(registry).decode()
    counted = database.metrics()["engines"]["primary"]

    samples = {
        (sample.name, sample.labels.get("state") or sample.labels.get("quantile")): sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("role") == "primary"
    }
    statements = samples[("storelayer_statements_total", None)]
    assert statements.labels["db_system"] == backend.name
    assert statements.value == counted["statements"] >= len(NAMES) + 1
    assert samples[("storelayer_errors_total", None)].value == counted["errors"] == 1
    assert samples[("storelayer_retries_total", None)].value == counted["retries"]
    assert samples[("storelayer_pool_connections", "used")].value == 0
    assert samples[("storelayer_pool_connections", "idle")].value >= 1
    assert samples[("storelayer_pool_checkouts_total", None)].value == counted["pool"]["checkouts"]
    median = samples[("storelayer_statement_latency_seconds", "0.5")].value
    slowest = samples[("storelayer_statement_latency_seconds", "1")].value
    assert 0 < median <= slowest
    assert NAMES[0] not in text
