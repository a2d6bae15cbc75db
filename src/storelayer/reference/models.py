"""The reference schema: the data layer of a command-line platform.

Users own projects; commands run for a user in a project and record performance
metrics; an audit log, telemetry events, a cache, per-project configuration, session
tokens and RDF specifications complete it. The tables are created by the migrations in
``alembic/`` (``storelayer migrate upgrade``), never by ``create_all`` in production.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storelayer.reference.base import Model, ReferenceBase, UUIDModel
from storelayer.reference.types import ID_TYPE, LONG_TEXT, UTCDateTime, UtcNow, utcnow

__all__ = [
    "AuditLog",
    "CacheEntry",
    "Command",
    "CommandStatus",
    "Configuration",
    "MetricType",
    "PerformanceMetric",
    "Project",
    "RDFSpecification",
    "SessionToken",
    "TelemetryEvent",
    "User",
    "metadata",
]

metadata = ReferenceBase.metadata


class CommandStatus(str, enum.Enum):
    """Where a command is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class MetricType(str, enum.Enum):
    """What a metric's value measures."""

    COUNTER = "counter"
    GAUGE = "gauge"
    TIMER = "timer"
    HISTOGRAM = "histogram"


def _values(members: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in members]


def portable_enum(members: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a named CHECK constraint holding the members' values: the same
    DDL on every backend, and no native type to create or drop in migrations."""
    return Enum(
        members,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=_values,
        validate_strings=True,
    )


def _fk(target: str, ondelete: str) -> ForeignKey:
    return ForeignKey(target, ondelete=ondelete)


class User(Model):
    """Someone who runs commands. The password is kept as a salted hash only."""

    __tablename__ = "users"
    __repr_attrs__ = ("username",)
    __dict_exclude__ = frozenset({"password_hash"})

    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[bytes] = mapped_column(LargeBinary)
    full_name: Mapped[str | None] = mapped_column(String(200))
    # Added by migration 0002 (server default, then backfilled from full_name/username).
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    projects: Mapped[list[Project]] = relationship(
        back_populates="owner", passive_deletes=True, order_by="Project.id"
    )


class Project(Model):
    """A codebase that commands run in."""

    __tablename__ = "projects"
    __repr_attrs__ = ("slug",)

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    owner_id: Mapped[int] = mapped_column(ID_TYPE, _fk("users.id", "CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    repository_url: Mapped[str | None] = mapped_column(String(500))

    owner: Mapped[User] = relationship(back_populates="projects")


class Command(Model):
    """One run of a command: its arguments, outcome, output and timing."""

    __tablename__ = "commands"
    __repr_attrs__ = ("name", "status")
    __table_args__ = (
        Index(None, "user_id", "project_id"),
        Index(None, "status", "started_at"),
        Index(None, "started_at"),
    )

    name: Mapped[str] = mapped_column(String(255))
    args: Mapped[list[str]] = mapped_column(JSON, default=list)
    user_id: Mapped[int | None] = mapped_column(ID_TYPE, _fk("users.id", "SET NULL"))
    project_id: Mapped[int | None] = mapped_column(
        ID_TYPE, _fk("projects.id", "SET NULL"), index=True
    )
    status: Mapped[CommandStatus] = mapped_column(
        portable_enum(CommandStatus, "command_status"), default=CommandStatus.PENDING
    )
    exit_code: Mapped[int | None] = mapped_column(Integer)
    stdout: Mapped[str | None] = mapped_column(LONG_TEXT)
    stderr: Mapped[str | None] = mapped_column(LONG_TEXT)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User | None] = relationship()
    project: Mapped[Project | None] = relationship()
    metrics: Mapped[list[PerformanceMetric]] = relationship(
        back_populates="command", passive_deletes=True, order_by="PerformanceMetric.id"
    )


class PerformanceMetric(Model):
    """One measurement, optionally of a command."""

    __tablename__ = "performance_metrics"
    __repr_attrs__ = ("name", "value")
    __table_args__ = (Index(None, "name", "recorded_at"),)

    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Double)
    type: Mapped[MetricType] = mapped_column(
        portable_enum(MetricType, "metric_type"), default=MetricType.GAUGE
    )
    unit: Mapped[str | None] = mapped_column(String(32))
    command_id: Mapped[int | None] = mapped_column(
        ID_TYPE, _fk("commands.id", "CASCADE"), index=True
    )
    recorded_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=UtcNow()
    )

    command: Mapped[Command | None] = relationship(back_populates="metrics")


class AuditLog(Model):
    """Who did what to which entity, from where."""

    __tablename__ = "audit_logs"
    __repr_attrs__ = ("action", "entity_type", "entity_id")
    __table_args__ = (
        Index(None, "entity_type", "entity_id"),
        Index(None, "action", "created_at"),
    )

    actor_id: Mapped[int | None] = mapped_column(
        ID_TYPE, _fk("users.id", "SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))  # room for IPv6 text

    actor: Mapped[User | None] = relationship()


class TelemetryEvent(UUIDModel):
    """A tracing event: UUID-keyed, as events are made on many machines."""

    __tablename__ = "telemetry_events"
    __repr_attrs__ = ("name",)
    __table_args__ = (Index(None, "name", "timestamp"),)

    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    span_id: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timestamp: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=UtcNow()
    )


class CacheEntry(Model):
    """A cached JSON value; expired entries read as missing until purged."""

    __tablename__ = "cache_entries"
    __repr_attrs__ = ("key",)

    key: Mapped[str] = mapped_column(String(255), unique=True)
    value: Mapped[Any] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class Configuration(Model):
    """A JSON setting of a project, one per project and key."""

    __tablename__ = "configurations"
    __repr_attrs__ = ("key",)
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    project_id: Mapped[int] = mapped_column(ID_TYPE, _fk("projects.id", "CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[Any] = mapped_column(JSON)

    project: Mapped[Project] = relationship()


class SessionToken(Model):
    """A login session. Only the SHA-256 of the token is stored, never the token."""

    __tablename__ = "session_tokens"
    __repr_attrs__ = ("user_id",)
    __dict_exclude__ = frozenset({"token_hash"})

    user_id: Mapped[int] = mapped_column(ID_TYPE, _fk("users.id", "CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class RDFSpecification(Model):
    """An RDF document attached to a project, tracked by content hash and size."""

    __tablename__ = "rdf_specifications"
    __repr_attrs__ = ("uri",)
    __table_args__ = (UniqueConstraint("project_id", "uri"),)

    project_id: Mapped[int] = mapped_column(ID_TYPE, _fk("projects.id", "CASCADE"))
    uri: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    project: Mapped[Project] = relationship()
