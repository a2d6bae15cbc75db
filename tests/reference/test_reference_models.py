"""The reference models: base behaviour, portable types, constraints, on every backend."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import insert, inspect, select, text

from storelayer.database import Database
from storelayer.errors import Conflict
from storelayer.reference import (
    NAMING_CONVENTION,
    CacheEntry,
    Command,
    CommandStatus,
    Project,
    TelemetryEvent,
    User,
    UTCDateTime,
    metadata,
)
from storelayer.reference.repositories import UserRepository

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
TABLES = {
    "users", "projects", "commands", "performance_metrics", "audit_logs", "telemetry_events",
    "cache_entries", "configurations", "session_tokens", "rdf_specifications",
}


def make_user(db: Database, name: str = "ada") -> User:
    with db.session() as s:
        return UserRepository(s).create_user(name, f"{name}@example.com", "pw",
                                             full_name=name.title())


# -- metadata (no database) ---------------------------------------------------------


def test_the_schema_has_every_table() -> None:
    assert set(metadata.tables) == TABLES


def test_every_constraint_and_index_is_named_portably() -> None:
    """Names come from the convention and stay within PostgreSQL's 63 characters, so
    that no backend shortens one differently."""
    for table in metadata.sorted_tables:
        named = [*table.indexes, *table.constraints]
        for item in named:
            assert item.name, f"{table.name}: unnamed {item!r}"
            rendered = str(item.name)
            assert len(rendered) <= 63, rendered
            prefix = rendered.split("_", 1)[0]
            assert prefix in NAMING_CONVENTION, rendered


def test_foreign_keys_are_indexed() -> None:
    """MySQL adds an index to an unindexed foreign key by itself, which would make its
    schema differ from the migrations; every foreign key leads some index."""
    for table in metadata.sorted_tables:
        leading = {idx.columns[0].name for idx in table.indexes}
        leading |= {c.columns[0].name for c in table.constraints
                    if c.__class__.__name__ == "UniqueConstraint"}
        for fk in table.foreign_keys:
            assert fk.parent.name in leading, f"{table.name}.{fk.parent.name}"


def test_composite_indexes_for_the_dashboard_queries() -> None:
    indexes = {idx.name for idx in Command.__table__.indexes}  # type: ignore[attr-defined]
    assert {"ix_commands_user_id_project_id", "ix_commands_status_started_at"} <= indexes


def test_repr_is_short_and_to_dict_leaves_secrets_out() -> None:
    user = User(id=7, username="ada", email="a@example.com", password_hash=b"x")
    assert repr(user) == "<User id=7 username='ada'>"
    data = user.to_dict()
    assert data["username"] == "ada"
    assert "password_hash" not in data
    assert repr(User()) == "<User transient>"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(dt.datetime(2024, 1, 1), dialect=None)  # type: ignore[arg-type]


def test_the_core_never_imports_the_reference_schema() -> None:
    code = (
        "import sys, storelayer, storelayer.database, storelayer.repository, "
        "storelayer.session, storelayer.migrations, storelayer.cli; "
        "print([m for m in sys.modules if m.startswith('storelayer.reference')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


# -- on every backend ---------------------------------------------------------------


def test_timestamps_are_set_aware_and_in_utc(db: Database) -> None:
    user = make_user(db)
    assert user.created_at.tzinfo is not None
    assert user.created_at.utcoffset() == dt.timedelta(0)
    with db.read_session() as s:
        loaded = s.get(User, user.id)
    assert loaded is not None
    assert loaded.created_at == user.created_at  # microseconds survive on every backend
    assert loaded.created_at.tzinfo is not None


def test_updated_at_moves_on_update(db: Database) -> None:
    user = make_user(db)
    with db.session() as s:
        users = UserRepository(s)
        row = users.get_or_raise(user.id)
        users.update(row, full_name="Ada L.")
        updated = row.updated_at
    assert updated > user.updated_at
    assert updated.tzinfo is not None


def test_any_time_zone_is_stored_as_the_same_instant(db: Database) -> None:
    user = make_user(db)
    paris = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    with db.session() as s:
        s.add(Command(name="x", args=[], user_id=user.id, status=CommandStatus.RUNNING,
                      started_at=moment))
    with db.read_session() as s:
        stored = s.scalars(select(Command.started_at)).one()
        assert s.scalar(select(Command.id).where(Command.started_at == moment)) is not None
    assert stored == moment
    assert stored.tzinfo == dt.timezone.utc
    assert stored.hour == 12


def test_server_defaults_fill_rows_written_by_raw_sql(db: Database) -> None:
    """Rows inserted without the ORM still get timestamps and flags."""
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    with db.session() as s:
        s.execute(insert(User.__table__).values(  # type: ignore[arg-type]
            username="raw", email="raw@example.com", password_hash=b"x"))
    with db.read_session() as s:
        user = s.scalars(select(User).where(User.username == "raw")).one()
    assert user.is_active is True
    assert user.is_admin is False
    assert user.display_name == ""
    assert user.created_at >= before
    assert user.created_at <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)


def test_status_is_checked_by_the_database(db: Database) -> None:
    with pytest.raises(Conflict), db.session() as s:
        s.execute(text("INSERT INTO commands (name, args, status, created_at, updated_at) "
                       "VALUES ('x', '[]', 'bogus', :t, :t)"),
                  {"t": T0.replace(tzinfo=None)})


def test_json_values_round_trip(db: Database) -> None:
    value = {"list": [1, 2.5, "three"], "nested": {"ok": True, "none": None}}
    with db.session() as s:
        s.add(CacheEntry(key="k", value=value))
    with db.read_session() as s:
        assert s.scalars(select(CacheEntry.value)).one() == value


def test_uuid_primary_keys(db: Database) -> None:
    with db.session() as s:
        event = TelemetryEvent(trace_id="a" * 32, span_id="b" * 16, name="span",
                               attributes={"http.status": 200})
        s.add(event)
        s.flush()
        key = event.id
    assert isinstance(key, uuid.UUID)
    with db.read_session() as s:
        loaded = s.get(TelemetryEvent, key)
    assert loaded is not None
    assert loaded.attributes == {"http.status": 200}
    assert loaded.timestamp.tzinfo is not None


def test_unique_username_is_a_conflict(db: Database) -> None:
    make_user(db, "ada")
    with pytest.raises(Conflict):
        make_user(db, "ada")


def test_deleting_a_user_cascades_to_projects_and_detaches_commands(db: Database) -> None:
    user = make_user(db)
    with db.session() as s:
        project = Project(name="P", slug="p", owner_id=user.id)
        s.add(project)
        s.flush()
        s.add(Command(name="x", args=[], user_id=user.id, project_id=project.id,
                      status=CommandStatus.SUCCESS))
    with db.session() as s:
        s.delete(s.get(User, user.id))
    with db.read_session() as s:
        assert s.scalars(select(Project)).all() == []
        command = s.scalars(select(Command)).one()
        assert (command.user_id, command.project_id) == (None, None)


def test_the_database_has_the_reference_tables(db: Database) -> None:
    assert set(inspect(db.engine).get_table_names()) >= TABLES
