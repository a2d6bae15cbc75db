"""The reference schema's migrations on every backend: the full cycle, the second
migration's backfill, schema verification, drift detection, a user's own directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import column, exc, insert, inspect, select, table, text
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.database import Database
from storelayer.migrations import (
    MigrationError,
    MigrationLockTimeout,
    MigrationManager,
    migration_lock,
)
from storelayer.reference import metadata

TABLES = set(metadata.tables)


def tables_of(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def test_upgrade_verify_check_downgrade_upgrade(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    assert migrations.current() == ()
    applied = migrations.upgrade()
    assert [step["revision"] for step in applied] == ["0001", "0002"]
    assert {step["direction"] for step in applied} == {"upgrade"}
    assert migrations.current() == migrations.heads() == ("0002",)
    assert tables_of(fresh_db) == TABLES | {"alembic_version"}
    assert migrations.verify_schema() == {
        "valid": True, "missing_tables": [], "extra_tables": [], "column_issues": []}
    assert migrations.check() == []

    undone = migrations.downgrade("base")
    assert [step["revision"] for step in undone] == ["0002", "0001"]
    assert tables_of(fresh_db) == set()  # not even an empty version table
    assert migrations.current() == ()

    assert len(migrations.upgrade()) == 2
    assert migrations.verify_schema()["valid"] is True
    assert migrations.upgrade() == []  # nothing left to do


def test_step_by_step_and_relative_revisions(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade("0001")
    assert migrations.current() == ("0001",)
    assert not migrations.is_up_to_date()
    migrations.upgrade("+1")
    assert migrations.is_up_to_date()
    migrations.downgrade("-1")
    assert migrations.current() == ("0001",)
    assert migrations.stamp("head")[0]["direction"] == "stamp"
    assert migrations.current() == ("0002",)


def test_history(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade("0001")
    history = migrations.history()
    assert [(h.revision, h.down_revisions, h.is_head, h.is_current) for h in history] == [
        ("0002", ("0001",), True, False), ("0001", (), False, True)]
    assert history[1].message == "The reference schema."
    assert history[0].to_dict()["down_revisions"] == ["0001"]


def test_unknown_revision_is_a_migration_error(fresh_db: Database) -> None:
    with pytest.raises(MigrationError, match="nosuch"):
        MigrationManager(fresh_db).upgrade("nosuch")


def test_a_directory_without_env_py_is_refused(fresh_db: Database, tmp_path: Path) -> None:
    manager = MigrationManager(fresh_db, script_location=tmp_path)  # init() may write it
    for command in (manager.upgrade, manager.current, manager.heads):
        with pytest.raises(MigrationError, match="no env.py"):
            command()


# -- the second migration: a NOT NULL column with a server default, then a backfill ---

users = table("users", column("id"), column("username"), column("email"),
              column("password_hash"), column("full_name"))
projects = table("projects", column("id"), column("name"), column("slug"), column("owner_id"))


def seed_at_0001(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(insert(users), [
            {"id": 1, "username": "ada", "email": "a@x", "password_hash": b"h",
             "full_name": "Ada Lovelace"},
            {"id": 2, "username": "grace", "email": "g@x", "password_hash": b"h",
             "full_name": None},
        ])
        conn.execute(insert(projects), [{"id": 1, "name": "P", "slug": "p", "owner_id": 1}])


def test_second_migration_adds_a_column_and_backfills(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade("0001")
    seed_at_0001(fresh_db)
    assert migrations.upgrade() == [{"revision": "0002", "direction": "upgrade",
                                     "message": migrations.history()[0].message}]
    with fresh_db.engine.begin() as conn:
        rows = conn.execute(text("SELECT username, display_name FROM users ORDER BY id"))
        assert rows.all() == [("ada", "Ada Lovelace"), ("grace", "grace")]
        # Rows written by code that predates the column get the server default.
        conn.execute(insert(users).values(id=3, username="new", email="n@x",
                                          password_hash=b"h"))
        assert conn.scalar(text("SELECT display_name FROM users WHERE id = 3")) == ""
    assert migrations.verify_schema()["valid"] is True


def test_downgrading_the_second_migration_keeps_the_data(fresh_db: Database) -> None:
    """SQLite drops a column by rebuilding the table (batch mode); with foreign keys on,
    that would delete the projects that reference the users. They survive, and foreign
    keys are enforced again afterwards."""
    migrations = MigrationManager(fresh_db)
    migrations.upgrade("0001")
    seed_at_0001(fresh_db)
    migrations.upgrade()
    migrations.downgrade("0001")
    columns = {c["name"] for c in inspect(fresh_db.engine).get_columns("users")}
    assert "display_name" not in columns
    with fresh_db.engine.begin() as conn:
        assert conn.execute(select(users.c.username).order_by(users.c.id)).scalars().all() == [
            "ada", "grace"]
        assert conn.execute(select(projects.c.slug)).scalars().all() == ["p"]
    with pytest.raises(exc.IntegrityError), fresh_db.engine.begin() as conn:
        conn.execute(insert(projects).values(id=2, name="Q", slug="q", owner_id=999))
    assert migrations.upgrade()[0]["revision"] == "0002"


# -- verification and drift ---------------------------------------------------------


def test_verify_schema_reports_what_differs(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    empty = migrations.verify_schema()
    assert empty["valid"] is False
    assert empty["missing_tables"] == sorted(TABLES)
    assert empty["column_issues"] == []

    migrations.upgrade("0001")
    behind = migrations.verify_schema()
    assert behind["valid"] is False
    assert behind["column_issues"] == ["column users.display_name is missing"]

    migrations.upgrade()
    with fresh_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
        conn.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)"))
        conn.execute(text("DROP INDEX ix_commands_started_at" + (
            " ON commands" if fresh_db.engine.dialect.name == "mysql" else "")))
    report = migrations.verify_schema(fresh_db.engine)
    assert report["extra_tables"] == ["stray"]
    assert report["missing_tables"] == []
    assert report["valid"] is False
    issues = "\n".join(report["column_issues"])
    assert "users.nickname is in the database but not in the models" in issues
    assert "index ix_commands_started_at on commands(started_at) is missing" in issues


def test_extra_tables_alone_keep_the_schema_valid(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade()
    with fresh_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE my_app_table (id INTEGER PRIMARY KEY)"))
    report = migrations.verify_schema()
    assert (report["valid"], report["extra_tables"]) == (True, ["my_app_table"])


def test_check_finds_what_no_migration_made(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade()
    with fresh_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)"))
    assert migrations.check() == [
        "column users.nickname is in the database but not in the models"]


def test_check_needs_the_database_at_head(fresh_db: Database) -> None:
    migrations = MigrationManager(fresh_db)
    migrations.upgrade("0001")
    with pytest.raises(MigrationError, match="upgrade it first"):
        migrations.check()


# -- the lock, in one process ---------------------------------------------------------


def test_a_held_lock_makes_the_next_migrator_wait_then_give_up(
    fresh_db: Database, backend: Backend
) -> None:
    told: list[str] = []
    migrations = MigrationManager(fresh_db, lock_timeout=0.5, report=told.append)
    with (
        fresh_db.engine.connect() as holder,
        migration_lock(holder),
        pytest.raises(MigrationLockTimeout, match="waiting for the migration lock"),
    ):
        migrations.upgrade()
    assert told == ["waiting for the migration lock: another process is migrating "
                    "this database"]
    assert migrations.current() == ()
    assert [s["revision"] for s in migrations.upgrade()] == ["0001", "0002"]  # released


# -- a user's own migration directory -------------------------------------------------

USER_ENV = '''
"""env.py of an application on storelayer."""
import datetime as dt

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer.migrations import run_migrations
from storelayer.reference.base import (
    NAMING_CONVENTION, TYPE_ANNOTATION_MAP, IntegerPKMixin, ModelMixin, TimestampMixin,
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Widget(IntegerPKMixin, TimestampMixin, ModelMixin, Base):
    __tablename__ = "widgets"
    name: Mapped[str] = mapped_column(String(100), unique=True)
    delivered_at: Mapped[dt.datetime | None]


run_migrations(Base.metadata, version_table="widget_versions")
'''


def test_a_users_own_directory_autogenerates_upgrades_and_checks(
    fresh_db: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(textwrap.dedent(USER_ENV))
    reference = MigrationManager(fresh_db).script_location
    (directory / "script.py.mako").write_text((reference / "script.py.mako").read_text())
    migrations = MigrationManager(fresh_db, script_location=directory,
                                  version_table="widget_versions")

    [written] = migrations.revision("widgets", rev_id="w1")
    source = written.read_text()
    assert "op.create_table('widgets'" in source or 'op.create_table("widgets"' in source
    assert "storelayer.reference.types.UtcNow()" in source  # portable, not one dialect's SQL
    assert "import storelayer.reference.types" in source

    assert [s["revision"] for s in migrations.upgrade()] == ["w1"]
    assert tables_of(fresh_db) == {"widgets", "widget_versions"}
    assert migrations.check() == []
    with pytest.raises(MigrationError, match="target_metadata"):
        migrations.verify_schema()


def test_database_url_is_read_when_no_database_is_given(
    fresh_url: URL, monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url.render_as_string(hide_password=False))
    with MigrationManager() as migrations:
        assert migrations.database.backend.name == backend.name
        migrations.upgrade()
        assert migrations.is_up_to_date()


FAILING_VERSION = '''
import sqlalchemy as sa
from alembic import op

revision = "f1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO no_such_table VALUES (1)")


def downgrade():
    op.drop_table("half")
'''


def test_a_failing_migration_is_one_error_and_rolled_back_where_ddl_is_transactional(
    fresh_db: Database, backend: Backend, tmp_path: Path
) -> None:
    directory = tmp_path / "failing"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(
        "from storelayer.migrations import run_migrations\nrun_migrations(None)\n")
    (directory / "versions" / "f1_failing.py").write_text(textwrap.dedent(FAILING_VERSION))
    migrations = MigrationManager(fresh_db, script_location=directory)
    with pytest.raises(MigrationError, match="a migration failed") as raised:
        migrations.upgrade()
    assert "no_such_table" in str(raised.value)
    assert migrations.current() == ()
    half_applied = "half" in tables_of(fresh_db)
    assert half_applied is not backend.features.transactional_ddl
