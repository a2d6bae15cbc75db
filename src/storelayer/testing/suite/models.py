"""The conformance suite's own models, on their own ``DeclarativeBase``.

Every table is prefixed ``conformance_`` so that the suite never touches a user's tables.
The models use only portable SQLAlchemy types; the one variant is the long-text column,
which MySQL/MariaDB needs as ``LONGTEXT`` because its ``TEXT`` holds 64 KiB only.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Unbounded text on every backend (MySQL's plain TEXT stops at 65,535 bytes).
LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class ConformanceBase(DeclarativeBase):
    """Base of the suite's models; its metadata holds only ``conformance_*`` tables."""


class ConformanceUser(ConformanceBase):
    """An integer-keyed model with the column types applications use most."""

    __tablename__ = "conformance_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    balance: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("0"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    bio: Mapped[str | None] = mapped_column(LONG_TEXT, nullable=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    score: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<ConformanceUser {self.id} {self.username!r}>"


class ConformanceToken(ConformanceBase):
    """A model keyed by a UUID generated in Python."""

    __tablename__ = "conformance_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    label: Mapped[str] = mapped_column(String(100))


class ConformanceMembership(ConformanceBase):
    """A model with a two-column primary key."""

    __tablename__ = "conformance_memberships"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(32))


class ConformanceParent(ConformanceBase):
    """The referenced side of a foreign key."""

    __tablename__ = "conformance_parents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class ConformanceChild(ConformanceBase):
    """The referencing side of a foreign key (no ORM relationship: plain column writes)."""

    __tablename__ = "conformance_children"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("conformance_parents.id"))
    name: Mapped[str] = mapped_column(String(100))


class ConformanceCounter(ConformanceBase):
    """One integer that concurrent units of work increment."""

    __tablename__ = "conformance_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class ConformanceEvent(ConformanceBase):
    """A narrow model for large-table tests (streaming 100,000 rows)."""

    __tablename__ = "conformance_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(String(64))


class Mood(enum.Enum):
    """The values of ``ConformanceValue.mood``."""

    CALM = "calm"
    CURIOUS = "curious"


class ConformanceValue(ConformanceBase):
    """One nullable column for each further value type applications hand the driver."""

    __tablename__ = "conformance_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document: Mapped[Any] = mapped_column(JSON, nullable=True)
    big: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mood: Mapped[Mood | None] = mapped_column(Enum(Mood, name="conformance_mood"), nullable=True)
    naive_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
