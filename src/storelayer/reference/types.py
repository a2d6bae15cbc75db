"""Column types that behave the same on every backend.

``UTCDateTime`` stores UTC and always hands back timezone-aware UTC datetimes, although
SQLite and MySQL keep no time zone; ``UtcNow`` is the matching server-side default;
``LONG_TEXT`` is unbounded text (MySQL's plain ``TEXT`` stops at 64 KiB); ``ID_TYPE`` is
a 64-bit key that still auto-increments on SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Dialect names of MySQL and MariaDB.
MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})

#: Unbounded text on every backend.
LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: Primary and foreign keys: BIGINT, except SQLite's INTEGER (only an ``INTEGER PRIMARY
#: KEY`` auto-increments there, and it is 64-bit anyway).
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A point in time: aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL keeps it as ``TIMESTAMP WITH TIME ZONE``; SQLite and MySQL keep the UTC
    wall-clock time (MySQL with microseconds: ``DATETIME(6)``). A naive datetime is
    refused: its meaning depends on the machine that made it.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:  # what autogenerate writes into a migration
        return "UTCDateTime()"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL_DIALECTS:  # plain DATETIME drops the microseconds
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"UTCDateTime takes a datetime, got a {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} has no time zone: pass an aware one, "
                "e.g. datetime.now(timezone.utc)"
            )
        # Drivers of zone-less columns (sqlite3, PyMySQL) write the wall-clock fields and
        # ignore tzinfo, so UTC wall-clock time is what they store.
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc)


class UtcNow(FunctionElement[dt.datetime]):
    """``server_default=UtcNow()``: the database's current UTC time, with sub-second
    precision where the column has it. Rows written by raw SQL get a timestamp too."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(UtcNow)
def _utcnow_default(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(UtcNow, "sqlite")
def _utcnow_sqlite(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    # Parenthesised: SQLite accepts an expression as a column default only in ( ).
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"


@compiles(UtcNow, "mysql")
@compiles(UtcNow, "mariadb")
def _utcnow_mysql(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    # UTC whatever the session's time_zone (MySQL 8.0.13+, MariaDB 10.2+).
    return "(UTC_TIMESTAMP(6))"
