"""For backends whose ``DATETIME`` keeps no offset (SQLite, MySQL): store an aware
datetime as its UTC instant, so the instant survives the round trip on every driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine import Dialect, Engine


def as_naive_utc(value: Any) -> Any:
    """An aware datetime as naive UTC; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class AwareAsUTC:
    """Mix into a dialect's ``DATETIME`` type: aware values are bound as naive UTC."""

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)  # type: ignore[misc]

        def to_utc(value: Any) -> Any:
            value = as_naive_utc(value)
            return process(value) if process else value

        return to_utc


def store_aware_datetimes_as_utc(
    engine: Engine, datetime_type: type[types.TypeEngine[Any]]
) -> None:
    """Make ``engine`` bind every ``DateTime`` column through ``datetime_type`` (a
    dialect ``DATETIME`` subclass mixing in :class:`AwareAsUTC`)."""
    engine.dialect.colspecs = {**engine.dialect.colspecs, types.DateTime: datetime_type}
