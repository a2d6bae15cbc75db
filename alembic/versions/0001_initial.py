"""The reference schema.

Users, projects, commands, performance metrics, the audit log, telemetry events, the
cache, project configuration, session tokens and RDF specifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from storelayer.reference.types import UTCDateTime, UtcNow

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 64-bit keys; SQLite auto-increments only an INTEGER PRIMARY KEY (64-bit anyway).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: Created last first: dropped in reverse order of their foreign keys.
TABLES = (
    "users", "projects", "commands", "performance_metrics", "audit_logs",
    "telemetry_events", "cache_entries", "configurations", "session_tokens",
    "rdf_specifications",
)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _fk(name: str, nullable: bool) -> sa.Column[int]:
    return sa.Column(name, ID, nullable=nullable)


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), server_default=UtcNow(), nullable=False)


def _timestamps() -> list[sa.Column[object]]:
    return [_timestamp("created_at"), _timestamp("updated_at")]


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.LargeBinary(), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "projects",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        _fk("owner_id", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("repository_url", sa.String(500), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("slug", name=op.f("uq_projects_slug")),
    )
    op.create_index(op.f("ix_projects_owner_id"), "projects", ["owner_id"])
    op.create_table(
        "commands",
        _id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        _fk("user_id", nullable=True),
        _fk("project_id", nullable=True),
        sa.Column(
            "status", _enum("command_status", "pending", "running", "success", "failed"),
            nullable=False,
        ),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("stdout", LONG_TEXT, nullable=True),
        sa.Column("stderr", LONG_TEXT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_commands_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_commands_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    op.create_index(op.f("ix_commands_project_id"), "commands", ["project_id"])
    op.create_index(op.f("ix_commands_started_at"), "commands", ["started_at"])
    op.create_index(
        op.f("ix_commands_status_started_at"), "commands", ["status", "started_at"]
    )
    op.create_index(
        op.f("ix_commands_user_id_project_id"), "commands", ["user_id", "project_id"]
    )
    op.create_table(
        "performance_metrics",
        _id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column(
            "type", _enum("metric_type", "counter", "gauge", "timer", "histogram"),
            nullable=False,
        ),
        sa.Column("unit", sa.String(32), nullable=True),
        _fk("command_id", nullable=True),
        _timestamp("recorded_at"),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["command_id"], ["commands.id"],
            name=op.f("fk_performance_metrics_command_id_commands"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_metrics")),
    )
    op.create_index(
        op.f("ix_performance_metrics_command_id"), "performance_metrics", ["command_id"]
    )
    op.create_index(
        op.f("ix_performance_metrics_name_recorded_at"), "performance_metrics",
        ["name", "recorded_at"],
    )
    op.create_table(
        "audit_logs",
        _id(),
        _fk("actor_id", nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("entity_type", sa.String(100), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_logs_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    op.create_index(
        op.f("ix_audit_logs_action_created_at"), "audit_logs", ["action", "created_at"]
    )
    op.create_index(op.f("ix_audit_logs_actor_id"), "audit_logs", ["actor_id"])
    op.create_index(
        op.f("ix_audit_logs_entity_type_entity_id"), "audit_logs",
        ["entity_type", "entity_id"],
    )
    op.create_table(
        "telemetry_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        _timestamp("timestamp"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_events")),
    )
    op.create_index(
        op.f("ix_telemetry_events_name_timestamp"), "telemetry_events", ["name", "timestamp"]
    )
    op.create_index(op.f("ix_telemetry_events_trace_id"), "telemetry_events", ["trace_id"])
    op.create_table(
        "cache_entries",
        _id(),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_cache_entries_key")),
    )
    op.create_index(op.f("ix_cache_entries_expires_at"), "cache_entries", ["expires_at"])
    op.create_table(
        "configurations",
        _id(),
        _fk("project_id", nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_configurations_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configurations")),
        sa.UniqueConstraint(
            "project_id", "key", name=op.f("uq_configurations_project_id_key")
        ),
    )
    op.create_table(
        "session_tokens",
        _id(),
        _fk("user_id", nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_session_tokens_token_hash")),
    )
    op.create_index(op.f("ix_session_tokens_user_id"), "session_tokens", ["user_id"])
    op.create_table(
        "rdf_specifications",
        _id(),
        _fk("project_id", nullable=False),
        sa.Column("uri", sa.String(500), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_rdf_specifications_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rdf_specifications")),
        sa.UniqueConstraint(
            "project_id", "uri", name=op.f("uq_rdf_specifications_project_id_uri")
        ),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints on every backend.
    for table in reversed(TABLES):
        op.drop_table(table)
