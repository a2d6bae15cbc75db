"""Bulk writes of many rows take a backend's fast path (``backend.bulk``: values bound a
column at a time, the driver's own executemany or PostgreSQL's COPY); a few rows take
SQLAlchemy's. Both must store the same values: given and left-out columns, Python-side
scalar and callable defaults, server defaults, a column whose attribute is named
differently, a ``%`` in a column's name, decimals, aware datetimes, NULLs - and upserts
must update and insert alike. On every backend, through both APIs."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, DateTime, Numeric, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer import Conflict, Database
from storelayer.backend.bulk import MIN_ROWS

pytestmark = pytest.mark.api_modes

_counter = itertools.count(1)


class Base(DeclarativeBase):
    pass


class Reading(Base):
    __tablename__ = "bulk_path_readings"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sensor: Mapped[str] = mapped_column("sensor name", String(20), unique=True)
    value: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    share: Mapped[Decimal | None] = mapped_column("share%", Numeric(5, 2))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    unit: Mapped[str] = mapped_column(String(5), default="kPa")
    batch: Mapped[int] = mapped_column(default=lambda: 7)
    origin: Mapped[str] = mapped_column(String(10), server_default=text("'probe'"))
    note: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (CheckConstraint("value >= 0", name="bulk_path_value_not_negative"),)


#: What an upsert overwrites. Not ``share%``: SQLAlchemy's MySQL dialect doubles the
#: ``%`` of ``VALUES(`share%`)`` twice in ``ON DUPLICATE KEY UPDATE``.
UPDATED = ["value", "at", "unit"]
EAST = dt.timezone(dt.timedelta(hours=3))


def row(i: int, *, updated: bool = False) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": i,
        "sensor": f"s{i:04}",
        "value": Decimal(i) / 8 + (1 if updated else 0),
        "share": None if i % 5 == 0 else Decimal(i % 100) / 4,
        "at": dt.datetime(2024, 5, 1, 12, tzinfo=EAST) + dt.timedelta(minutes=i),
    }
    if i % 2:
        values["unit"] = "bar"
    return values


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read_session() as s:
        found = s.repository(Reading).list(order_by="id")
        return [
            (r.id, r.sensor, r.value, r.share, r.at.astimezone(dt.timezone.utc), r.unit,
             r.batch, r.origin)
            for r in found
        ]  # fmt: skip


@pytest.fixture
def db(database: Database) -> Database:
    with database.engine.begin() as connection:
        Base.metadata.drop_all(connection)
        Base.metadata.create_all(connection)
    return database


def write(db: Database, batch: int) -> list[tuple[Any, ...]]:
    """Insert 2 x MIN_ROWS rows, then upsert the second half changed and as many new
    ones, ``batch`` rows a call; what is stored."""
    n = 2 * MIN_ROWS
    for start in range(1, n + 1, batch):
        with db.session() as s:
            s.repository(Reading).bulk_create(
                [row(i) for i in range(start, min(start + batch, n + 1))]
            )
    upserted = [row(i, updated=True) for i in range(MIN_ROWS + 1, 2 * n + 1)]
    for start in range(0, len(upserted), batch):
        with db.session() as s:
            s.repository(Reading).upsert_many(
                upserted[start : start + batch], on=["id"], update=UPDATED
            )
    return stored(db)


def test_the_fast_and_the_general_path_store_the_same(db: Database) -> None:
    fast = write(db, batch=4 * MIN_ROWS)
    with db.engine.begin() as connection:
        Base.metadata.drop_all(connection)
        Base.metadata.create_all(connection)
    general = write(db, batch=MIN_ROWS // 5)
    assert fast == general
    assert len(fast) == 4 * MIN_ROWS
    first, updated = fast[0], fast[-1]
    assert first[1:] == (
        "s0001", Decimal("0.125"), Decimal("0.25"),
        dt.datetime(2024, 5, 1, 9, 1, tzinfo=dt.timezone.utc), "bar", 7, "probe",
    )  # fmt: skip
    assert updated[2] == Decimal(4 * MIN_ROWS) / 8 + 1 and updated[5] == "kPa"


@pytest.mark.parametrize("batch", [MIN_ROWS + 10, 3], ids=["fast", "general"])
def test_a_repeated_key_is_the_same_error_on_either_path(db: Database, batch: int) -> None:
    with db.session() as s:
        s.repository(Reading).bulk_create([row(1)])
    rows = [row(i) for i in range(2, batch + 1)] + [{**row(batch + 1), "sensor": "s0001"}]
    with pytest.raises(Conflict) as caught, db.session() as s:
        s.repository(Reading).bulk_create(rows)
    assert "s0001" not in str(caught.value)  # the value is never shown
    assert len(stored(db)) == 1  # nothing of the batch was written


#: Rows of a write sent as several statements on SQLite (over 30,000 parameters) and
#: MySQL (over 1 MB of text, with a 200-character note a row).
SEVERAL = 4000


@pytest.mark.parametrize("size", [3, MIN_ROWS + 10, SEVERAL], ids=["few", "one", "several"])
@pytest.mark.parametrize("method", ["bulk_create", "upsert_many"])
def test_a_failed_bulk_write_undoes_itself_alone_and_the_unit_goes_on(
    db: Database, method: str, size: int
) -> None:
    """The last row breaks a CHECK constraint: whether the backend sent the write as one
    statement, several, or one a row, none of its rows stays, and the unit of work keeps
    its earlier and later writes."""
    rows = [{**row(i), "unit": "bar", "note": "n" * 200} for i in range(2, size + 2)]
    rows[-1]["value"] = Decimal(-1)
    with db.session() as s:
        readings = s.repository(Reading)
        readings.create(**row(1))
        with pytest.raises(Conflict) as caught:
            if method == "bulk_create":
                readings.bulk_create(rows)
            else:
                readings.upsert_many(rows, on=["id"], update=UPDATED)
        assert "n" * 200 not in str(caught.value)
        readings.bulk_create([row(size + 2)])
    assert [stored_row[0] for stored_row in stored(db)] == [1, size + 2]
