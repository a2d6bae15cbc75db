"""COPY inserts and paged upserts write exactly what the generic path would."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, LargeBinary, Numeric, String, Uuid, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Database
from storelayer.testing import Provisioner, provision_or_skip

TRICKY = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "", "emoji 🎉", None]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "fastpath_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    note: Mapped[str | None] = mapped_column(String(100), nullable=True)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("1.5"))
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    data: Mapped[Any] = mapped_column(JSON, nullable=True)
    ref: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4)
    flag: Mapped[bool] = mapped_column(default=False)
    at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


@pytest.fixture
def database(storelayer_provisioner: Provisioner) -> Iterator[Database]:
    backend = storelayer.get_plugin_manager().backends()["postgresql"]
    url: URL = provision_or_skip(storelayer_provisioner, backend)
    db = storelayer.connect(url)
    Base.metadata.create_all(db.engine)
    yield db
    Base.metadata.drop_all(db.engine)
    db.dispose()


def statements_through_sqlalchemy(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))
    return seen


def rows() -> list[dict[str, Any]]:
    return [
        {
            "name": f"n{i}",
            "note": note,
            "blob": bytes([i, 0, 255]),
            "data": {"i": i, "s": "a\tb"},
            "flag": i % 2 == 0,
            "at": dt.datetime(2024, 1, 1, 12, 0, i),
        }
        for i, note in enumerate(TRICKY)
    ]


def read_back(db: Database) -> list[tuple[Any, ...]]:
    with db.read_session() as s:
        return [
            (i.name, i.note, i.price, i.blob, i.data, i.flag, i.at, isinstance(i.ref, uuid.UUID))
            for i in s.repository(Item).list(order_by="name")
        ]


def expected() -> list[tuple[Any, ...]]:
    return sorted(
        (r["name"], r["note"], Decimal("1.5000"), r["blob"], r["data"], r["flag"], r["at"], True)
        for r in rows()
    )


def test_bulk_create_copies_every_value_exactly(database: Database) -> None:
    seen = statements_through_sqlalchemy(database)
    with database.session() as s:
        assert s.repository(Item).bulk_create(rows()) == len(TRICKY)
    assert "INSERT" not in seen  # the rows went through COPY
    assert read_back(database) == expected()


def test_upsert_pages_rows_and_applies_defaults(database: Database) -> None:
    seen = statements_through_sqlalchemy(database)
    with database.session() as s:
        s.repository(Item).upsert_many(rows(), on=["name"])
        s.repository(Item).upsert_many([{"name": "n0", "note": "changed"}], on=["name"])
    assert "INSERT" not in seen
    got = read_back(database)
    assert got[0][1] == "changed"
    assert got[1:] == expected()[1:]
