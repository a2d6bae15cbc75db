"""Performance metrics: recording, and aggregates computed by the database."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select

from storelayer._shapes import MappingAccess
from storelayer.errors import QueryError
from storelayer.reference.models import Command, MetricType, PerformanceMetric
from storelayer.reference.repositories._ids import id_of
from storelayer.reference.types import utcnow
from storelayer.repository import Repository

#: The percentiles ``aggregate_by_name`` computes unless told otherwise.
DEFAULT_PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class MetricAggregate(MappingAccess):
    """Count, mean, extremes and percentiles of one metric over a time window.
    ``percentiles`` maps 0.95 to the 95th percentile (linear interpolation between
    the closest ranks, as PostgreSQL's ``percentile_cont``)."""

    name: str
    count: int
    avg: float | None
    min: float | None
    max: float | None
    percentiles: dict[float, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (percentile keys as ``"p95"``)."""
        data = asdict(self)
        data["percentiles"] = {f"p{p * 100:g}": v for p, v in self.percentiles.items()}
        return data


def rank_positions(count: int, percentiles: Sequence[float]) -> dict[float, tuple[int, int, float]]:
    """For each percentile: the 1-based ranks around it and the weight of the upper."""
    positions: dict[float, tuple[int, int, float]] = {}
    for p in percentiles:
        if not 0 <= p <= 1:
            raise QueryError(f"percentiles are fractions between 0 and 1, got {p!r}")
        exact = p * (count - 1)
        low = math.floor(exact)
        positions[p] = (low + 1, min(low + 2, count), exact - low)
    return positions


class MetricRepository(Repository[PerformanceMetric]):
    """Measurements by name and time."""

    model = PerformanceMetric

    def record(
        self,
        name: str,
        value: float,
        *,
        type: MetricType | str = MetricType.GAUGE,
        unit: str | None = None,
        command: Command | int | None = None,
        recorded_at: dt.datetime | None = None,
    ) -> PerformanceMetric:
        """Store one measurement."""
        return self.create(
            name=name, value=float(value), type=MetricType(type), unit=unit,
            command_id=id_of(command), recorded_at=recorded_at or utcnow(),
        )

    def _window(
        self, name: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[ColumnElement[bool]]:
        window = [PerformanceMetric.name == name]
        if start is not None:
            window.append(PerformanceMetric.recorded_at >= start)
        if end is not None:
            window.append(PerformanceMetric.recorded_at < end)
        return window

    def aggregate_by_name(
        self,
        name: str,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ) -> MetricAggregate:
        """Aggregates of metric ``name`` recorded in ``[start, end)`` (no ``start``:
        from the first; no ``end``: to the last), computed in SQL
        (``ix_performance_metrics_name_recorded_at`` finds the rows). Percentiles use a
        window function (every supported backend has them); pass ``()`` to skip. The
        result reads by attribute and by key (``stats["count"]``)."""
        window = self._window(name, start, end)
        value = PerformanceMetric.value
        row = self.session.execute(
            select(func.count(), func.avg(value), func.min(value), func.max(value)).where(*window)
        ).one()
        count = int(row[0])
        if count == 0:
            return MetricAggregate(name, 0, None, None, None)
        return MetricAggregate(
            name, count, float(row[1]), float(row[2]), float(row[3]),
            self._percentiles(window, count, percentiles),
        )

    def _percentiles(
        self, window: list[ColumnElement[bool]], count: int, percentiles: Sequence[float]
    ) -> dict[float, float]:
        if not percentiles:
            return {}
        positions = rank_positions(count, percentiles)
        ranks = sorted({rank for low, high, _ in positions.values() for rank in (low, high)})
        ranked = (
            select(
                PerformanceMetric.value.label("value"),
                func.row_number().over(order_by=(PerformanceMetric.value, PerformanceMetric.id))
                .label("rank"),
            )
            .where(*window)
            .subquery()
        )
        rows = self.session.execute(
            select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(ranks))
        )
        at = {int(rank): float(v) for rank, v in rows}
        return {p: at[low] + (at[high] - at[low]) * weight
                for p, (low, high, weight) in positions.items()}
