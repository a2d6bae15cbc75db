"""Aware datetimes the same on every backend: written as their instant, returned aware
in UTC with their microseconds. For backends whose ``DATETIME`` keeps no offset (SQLite,
MySQL) an aware value is stored as its UTC instant; a ``DateTime(timezone=True)``
column returns it aware (UTC) there too, as PostgreSQL's ``timestamptz`` does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine import Dialect, Engine


def as_aware_utc(value: Any) -> Any:
    """A datetime read from a ``timezone=True`` column, aware in UTC (a naive one is
    the UTC instant a backend without offsets stored)."""
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


class ReturnedAsUTC:
    """Mix into a dialect's ``DATETIME`` type: a ``timezone=True`` column returns its
    values aware, in UTC."""

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        process = super().result_processor(dialect, coltype)  # type: ignore[misc]
        if not getattr(self, "timezone", False):
            return process  # type: ignore[no-any-return]

        def to_utc(value: Any) -> Any:
            return as_aware_utc(process(value) if process else value)

        return to_utc


class AwareAsUTC(ReturnedAsUTC):
    """Mix into a dialect's ``DATETIME`` type: aware values are bound as naive UTC, and
    a ``timezone=True`` column returns them aware, in UTC."""

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)  # type: ignore[misc]

        def to_utc(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return process(value) if process else value

        return to_utc


class BoundInUTC(ReturnedAsUTC):
    """Mix into the ``DATETIME`` type of a backend that keeps offsets: an aware value is
    bound as the same instant in UTC (PostgreSQL takes offsets up to 15:59 only, Python
    up to 23:59), and returned in UTC."""

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)  # type: ignore[misc]

        def to_utc(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.timezone.utc)
            return process(value) if process else value

        return to_utc

    def binds_naive_as_is(self, dialect: Dialect) -> bool:
        """Whether a naive datetime reaches the driver unchanged (no processor beneath
        this one): what a bulk path that writes the values' text may rely on."""
        return super().bind_processor(dialect) is None  # type: ignore[misc]


def store_aware_datetimes_as_utc(
    engine: Engine, datetime_type: type[types.TypeEngine[Any]]
) -> None:
    """Make ``engine`` bind every ``DateTime`` column through ``datetime_type`` (a
    dialect ``DATETIME`` subclass mixing in :class:`AwareAsUTC`)."""
    engine.dialect.colspecs = {**engine.dialect.colspecs, types.DateTime: datetime_type}


def return_aware_datetimes_as_utc(engine: Engine) -> None:
    """Make ``engine`` bind aware datetimes in UTC and its ``timezone=True`` columns
    return them in UTC, for a backend that keeps offsets (it returns them in the
    session's time zone)."""
    native = type(engine.dialect.type_descriptor(types.DateTime()))
    utc = type(f"UTC{native.__name__}", (BoundInUTC, native), {})
    store_aware_datetimes_as_utc(engine, utc)
