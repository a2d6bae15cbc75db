"""The datasets of the copy tests: the reference schema (migrated, then filled), the
Chinook sample, and a table with every portable type, each with a way to fill a source
database of any backend."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
    insert,
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import sqltypes

from storelayer.copy import copy_database
from storelayer.copy.types import portable_type
from storelayer.migrations import MigrationManager
from storelayer.reference.models import metadata as reference_metadata

UTC = dt.timezone.utc


class Kind(str, enum.Enum):
    """A Python enum stored by value."""

    SMALL = "small"
    LARGE = "large"


class AllTypesBase(DeclarativeBase):
    """The models of the all-types dataset (``--app copy_datasets:AllTypesBase``)."""


class Owner(AllTypesBase):
    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Value(AllTypesBase):
    __tablename__ = "all_types"
    __table_args__ = (Index("ix_all_types_owner_id", "owner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    small: Mapped[int | None] = mapped_column(SmallInteger)
    big: Mapped[int | None] = mapped_column(BigInteger)
    price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(18, 6))
    ratio: Mapped[float | None] = mapped_column(Double)
    flag: Mapped[bool | None] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    aware: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    naive: Mapped[dt.datetime | None] = mapped_column(DateTime)
    day: Mapped[dt.date | None] = mapped_column(Date)
    clock: Mapped[dt.time | None] = mapped_column(Time)
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)
    uid: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[Kind | None] = mapped_column(Enum(Kind, native_enum=False, length=16))


def all_types_rows(count: int = 40) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Owners and values: extremes, awkward text, one NULL per column somewhere."""
    owners = [{"id": i, "name": f"owner {i} \U0001f600"} for i in range(1, 4)]
    values = []
    for i in range(1, count + 1):
        row: dict[str, Any] = {
            "id": i,
            "owner_id": 1 + i % 3,
            "small": (-1) ** i * (i * 811 % 32767),
            "big": (-1) ** i * (2**63 - 1 - i),
            "price": decimal.Decimal(f"{i * 1234567}.{i:06d}"),
            "ratio": 1.2345678901234567 * i if i % 4 else 8.49e-175,
            "flag": i % 2 == 0,
            "name": f"naïve café 日本語 \U0001f680 {i} ' \" \\ %",
            "body": "long text. " * (i * 25),
            "blob": bytes(range(256)) * (1 + i % 2),
            "aware": dt.datetime(2024, 1, 1, 12, 30, 15, 123456 + i, tzinfo=UTC)
            + dt.timedelta(days=i, hours=i),
            "naive": dt.datetime(1999, 12, 31, 23, 59, 59, 999990 + i % 9),
            "day": dt.date(2000, 2, 29) + dt.timedelta(days=i),
            "clock": dt.time(i % 24, 59, 58, 654321),
            "doc": {"i": i, "list": [1, "two", None, True], "nested": {"ü": "\U0001f600"}},
            "uid": uuid.UUID(int=i * 7919 + 2**100),
            "kind": Kind.LARGE if i % 3 else Kind.SMALL,
        }
        column = list(row)[2 + i % (len(row) - 2)]
        row[column] = None
        values.append(row)
    return owners, values


def fill_all_types(engine: Engine) -> None:
    """Create the all-types tables from the models and fill them."""
    AllTypesBase.metadata.create_all(engine)
    owners, values = all_types_rows()
    with engine.begin() as connection:
        connection.execute(insert(Owner.__table__), owners)
        connection.execute(insert(Value.__table__), values)


def fill_reference(engine: Engine) -> None:
    """Migrate the reference schema to head and put rows in every table."""
    with MigrationManager(engine.url) as manager:
        manager.upgrade("head")
    tables = reference_metadata.tables
    now = dt.datetime(2025, 6, 1, 8, 0, 0, 250001, tzinfo=UTC)
    users = [
        {"id": i, "username": f"user{i}", "email": f"u{i}@example.com",
         "password_hash": bytes([i, 0, 255]) * 8, "full_name": f"Ünïcode \U0001f600 {i}",
         "display_name": f"User {i}", "is_active": i % 3 != 0, "is_admin": i == 1,
         "created_at": now, "updated_at": now + dt.timedelta(microseconds=i)}
        for i in range(1, 6)
    ]
    projects = [
        {"id": i, "name": f"project {i}", "slug": f"p{i}", "owner_id": 1 + i % 5,
         "description": "d" * 300, "created_at": now, "updated_at": now}
        for i in range(1, 5)
    ]
    commands = [
        {"id": i, "name": "build", "args": ["--fast", str(i)], "user_id": 1 + i % 5,
         "project_id": 1 + i % 4, "status": ["pending", "running", "success", "failed"][i % 4],
         "exit_code": i % 2, "stdout": "out\n" * i, "started_at": now,
         "finished_at": now + dt.timedelta(seconds=i, microseconds=7),
         "duration_ms": 2**40 + i, "created_at": now, "updated_at": now}
        for i in range(1, 9)
    ]
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        ("users", users),
        ("projects", projects),
        ("commands", commands),
        ("performance_metrics", [
            {"id": i, "name": "latency", "value": i / 7, "type": "timer", "unit": "ms",
             "command_id": 1 + i % 8, "recorded_at": now, "created_at": now, "updated_at": now}
            for i in range(1, 12)
        ]),
        ("audit_logs", [
            {"id": i, "actor_id": 1 + i % 5, "action": "login", "entity_type": "user",
             "entity_id": str(i), "details": {"ok": i % 2 == 0, "n": i}, "ip": "::1",
             "created_at": now, "updated_at": now}
            for i in range(1, 7)
        ]),
        ("telemetry_events", [
            {"id": uuid.UUID(int=i + 2**120), "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
             "name": "span", "attributes": {"k": [i]}, "timestamp": now,
             "created_at": now, "updated_at": now}
            for i in range(1, 6)
        ]),
        ("cache_entries", [
            {"id": i, "key": f"k{i}", "value": [i, {"x": None}], "expires_at": now,
             "created_at": now, "updated_at": now}
            for i in range(1, 4)
        ]),
        ("configurations", [
            {"id": i, "project_id": 1 + i % 4, "key": f"c{i}", "value": {"v": i},
             "created_at": now, "updated_at": now}
            for i in range(1, 4)
        ]),
        ("session_tokens", [
            {"id": i, "user_id": 1 + i % 5, "token_hash": f"{i:064x}", "expires_at": now,
             "created_at": now, "updated_at": now}
            for i in range(1, 4)
        ]),
        ("rdf_specifications", [
            {"id": 1, "project_id": 1, "uri": "urn:x", "format": "turtle",
             "content_hash": "0" * 64, "size": 2**33, "created_at": now, "updated_at": now}
        ]),
    ]
    with engine.begin() as connection:
        for name, batch in rows:
            table = tables[name]
            wanted = {c.name for c in table.columns}
            connection.execute(insert(table), [
                {k: v for k, v in row.items() if k in wanted} for row in batch
            ])


def fill_chinook(url: Any, chinook: Path) -> None:
    """Chinook, copied from its SQLite file (unknown schema: reflected)."""
    copy_database(f"sqlite:///{chinook}", url)


def schema_shape(engine: Engine) -> dict[str, Any]:
    """What any copy must keep of a schema it reflected: tables, columns (name, type
    family, nullability), primary keys, foreign keys."""
    shape: dict[str, Any] = {}
    with engine.connect() as connection:
        inspector = inspect(connection)
        for name in sorted(inspector.get_table_names()):
            metadata = MetaData()
            table = Table(name, metadata, autoload_with=connection)
            shape[name] = {
                "columns": [(c.name, _family(c.type), c.nullable) for c in table.columns],
                "pk": [c.name for c in table.primary_key.columns],
                "fks": sorted(
                    (fk.parent.name, fk.column.table.name, fk.column.name)
                    for fk in table.foreign_keys
                ),
            }
    return shape


def _family(type_: Any) -> str:
    generic = portable_type(type_)
    for family in (sqltypes.Boolean, sqltypes.Integer, sqltypes.Numeric, sqltypes.String,
                   sqltypes.DateTime, sqltypes.Date, sqltypes.Time, sqltypes.LargeBinary):
        if isinstance(generic, family):
            return family.__name__
    return type(generic).__name__
