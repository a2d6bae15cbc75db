"""What a live database holds, asked through SQLAlchemy only (no backend names): its
tables, schema revision, row counts, and an order-independent checksum per table."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, column, func, inspect, select, table
from sqlalchemy.engine import Connection, Engine

#: Alembic's table of applied revisions.
ALEMBIC_TABLE = "alembic_version"
#: Checksums add row digests modulo this, so row order does not matter.
MODULUS = 1 << 256


def table_names(engine: Engine) -> list[str]:
    """Tables of the default schema, sorted."""
    with engine.connect() as connection:
        return sorted(inspect(connection).get_table_names())


def schema_revision(connection: Connection) -> list[str]:
    """The Alembic revisions the database is at; empty when it has none."""
    if not inspect(connection).has_table(ALEMBIC_TABLE):
        return []
    version = table(ALEMBIC_TABLE, column("version_num"))
    return sorted(str(v) for v in connection.execute(select(version.c.version_num)).scalars())


def split_key(key: str) -> tuple[str | None, str]:
    """A manifest's table key: ``name`` in the default schema, else ``schema.name``."""
    schema, dot, name = key.partition(".")
    return (schema, name) if dot else (None, key)


def row_counts(engine: Engine, keys: Iterable[str]) -> dict[str, int]:
    """Rows of each named table; -1 for a table that does not exist."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        inspector = inspect(connection)
        for key in keys:
            schema, name = split_key(key)
            if not inspector.has_table(name, schema=schema):
                counts[key] = -1
                continue
            query = select(func.count()).select_from(table(name, schema=schema))
            counts[key] = int(connection.execute(query).scalar_one())
    return counts


def count_differences(expected: Mapping[str, int], actual: Mapping[str, int]) -> list[str]:
    """One line per table whose rows differ (missing tables included)."""
    lines = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key), actual.get(key)
        if want != got:
            shown = "missing" if got in (None, -1) else f"{got} rows"
            lines.append(f"{key}: {shown}, expected {'no table' if want is None else want}")
    return lines


def canonical(value: Any) -> Any:
    """A value as the same JSON on every backend: exact decimals, UTC instants, hex
    bytes, booleans as 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.utcoffset() is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time, dt.timedelta, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def row_digest(row: Iterable[Any]) -> int:
    """One row's SHA-256 as an integer."""
    text = json.dumps([canonical(v) for v in row], separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


class TableChecksum:
    """Accumulates rows into ``(rows, hex digest)``; the order of rows does not matter."""

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0

    def add(self, row: Iterable[Any]) -> None:
        """Count one row."""
        self.rows += 1
        self.total = (self.total + row_digest(row)) % MODULUS

    @property
    def hexdigest(self) -> str:
        """The sum of row digests, 64 hex digits."""
        return f"{self.total:064x}"


def table_checksum(connection: Connection, source: Table, batch: int = 1000) -> tuple[int, str]:
    """``(rows, checksum)`` of a table read through its (typed) ``Table``."""
    checksum = TableChecksum()
    columns = [source.c[c.name] for c in source.columns]
    result = connection.execution_options(stream_results=True, yield_per=batch).execute(
        select(*columns)
    )
    for row in result:
        checksum.add(row)
    return checksum.rows, checksum.hexdigest
