"""Tables with awkward values, and checksums of every table, for the backup tests."""

from __future__ import annotations

import datetime as dt
import decimal
import secrets

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
    text,
)

from storelayer import Database
from storelayer.backup.counts import table_checksum


def sample_metadata() -> MetaData:
    """Two tables joined by a foreign key, with every kind of value a dump must keep."""
    metadata = MetaData()
    Table(
        "authors",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False),
    )
    Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("author_id", ForeignKey("authors.id"), nullable=False),
        Column("title", String(200)),
        Column("body", Text),
        Column("price", Numeric(12, 4)),
        Column("ratio", Float),
        Column("created", DateTime),
        Column("done", Boolean),
        Column("blob", LargeBinary),
    )
    return metadata


AWKWARD = [
    "plain",
    "quote ' and \" and `",
    "back\\slash",
    "new\nline\r\ttab",
    "emoji \U0001f600",
    "semi; -- comment /* x */",
    "",
    "\\N",
    "percent %s %%",
    "NULL",
    "(a),(b)",
]


def fill_sample(db: Database, notes: int = 60) -> MetaData:
    """Create the sample tables and fill them (one NULL per column somewhere)."""
    metadata = sample_metadata()
    metadata.create_all(db.engine)
    authors = [{"id": i, "name": f"author {i} {AWKWARD[i % len(AWKWARD)]}"} for i in range(1, 6)]
    rows = [
        {
            "id": i,
            "author_id": 1 + i % 5,
            "title": AWKWARD[i % len(AWKWARD)] if i % 7 else None,
            "body": (AWKWARD[i % len(AWKWARD)] * (i % 4)) or None,
            "price": decimal.Decimal(i) / 8 if i % 9 else None,
            "ratio": i / 3 if i % 5 else None,
            "created": dt.datetime(2024, 1, 1, 12, 0, i % 60) if i % 6 else None,
            "done": bool(i % 2) if i % 8 else None,
            "blob": bytes(range(i % 256)) + b"\x00'\\\n" if i % 10 else None,
        }
        for i in range(1, notes + 1)
    ]
    with db.engine.begin() as connection:
        connection.execute(insert(metadata.tables["authors"]), authors)
        connection.execute(insert(metadata.tables["notes"]), rows)
    return metadata


def checksums(db: Database) -> dict[str, tuple[int, str]]:
    """``(rows, checksum)`` of every table, read through the reflected schema."""
    metadata = MetaData()
    metadata.reflect(db.engine)
    with db.engine.connect() as connection:
        return {name: table_checksum(connection, t) for name, t in metadata.tables.items()}


def wipe(db: Database) -> None:
    """Drop every table."""
    metadata = MetaData()
    metadata.reflect(db.engine)
    metadata.drop_all(db.engine)


def plant_marker(db: Database) -> str:
    """A note whose title is a random marker: a file that holds it holds clear data."""
    marker = f"clear-{secrets.token_hex(12)}"
    with db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO notes (id, author_id, title) VALUES (1000, 1, :m)"), {"m": marker}
        )
    return marker
