"""Where the target's schema comes from, decided before anything is written.

- ``data_only``: the target already has it (migrated first); nothing is created.
- a migration directory (given, or the reference schema's when the source is at one of
  its revisions): ``migrate upgrade`` on the target, to the source's revision.
- models (``--app module:Base``): ``create_all`` of those models.
- otherwise the source is reflected and its types made portable
  (:mod:`storelayer.copy.types`).

Rows are read from the source and written to the target through one set of typed
tables (the models where known), so both sides hand over the same Python values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Engine

from storelayer.backup.counts import schema_revision
from storelayer.copy.marker import MARKER
from storelayer.copy.types import reflect, refuse_cycles, target_metadata
from storelayer.errors import BackupError

Create = Callable[[Engine], None]


@dataclass(frozen=True)
class SchemaSource:
    """What the caller knows about the schema. ``models``: the application's metadata;
    ``migrations``: its migration directory; ``data_only``: the target has the schema
    already; ``version_table``: where the migrations record their revision."""

    models: MetaData | None = None
    migrations: Path | None = None
    data_only: bool = False
    version_table: str = "alembic_version"


@dataclass
class Plan:
    """How a copy runs: the typed tables read and written, how the target gets them."""

    tables: MetaData
    origin: str
    create: Create | None = None
    notes: list[str] = field(default_factory=list)
    #: The source's tables (without version table): what to type from the target
    #: when ``tables`` is empty.
    source_tables: frozenset[str] = frozenset()

    def typed_from(self, target: Engine) -> None:
        """Without models, type the tables from the target's schema (made portable),
        once it has one; a source table it lacks is an error."""
        if self.tables.tables:
            return
        present = _names(target)
        missing = sorted(self.source_tables - present)
        if missing:
            raise BackupError(
                f"the target lacks the tables {', '.join(missing)}: migrate it to the "
                "source's revision first (nothing was copied)"
            )
        reflected = reflect(target, skip=frozenset(present - self.source_tables))
        self.tables, notes = target_metadata(reflected, same_dialect=False)
        self.notes += notes


def _names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def _revision(engine: Engine, version_table: str) -> list[str]:
    with engine.connect() as connection:
        if version_table == "alembic_version":
            return schema_revision(connection)
        if not inspect(connection).has_table(version_table):
            return []
        rows = connection.exec_driver_sql(f"SELECT version_num FROM {version_table}")
        return sorted(str(v) for v in rows.scalars())


def _reference_schema(revisions: list[str]) -> tuple[Path, MetaData] | None:
    """The reference schema's migrations and models when the source is at one of its
    revisions. Alembic and the reference models are imported only for a source with a
    revision (a copy of an application's tables without one never loads them)."""
    if not revisions:
        return None
    from storelayer.migrations.manager import reference_metadata
    from storelayer.migrations.scaffold import reference_script_location

    location = reference_script_location()
    return (location, reference_metadata()) if _known_to(location, revisions) else None


def _known_to(location: Path, revisions: list[str]) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    scripts = ScriptDirectory(str(location))
    try:
        return bool(revisions) and all(scripts.get_revision(r) is not None for r in revisions)
    except CommandError:
        return False


def _subset(models: MetaData, source_tables: set[str], notes: list[str]) -> MetaData:
    """The models' tables the source has; the others are noted."""
    chosen = MetaData()
    for table in models.sorted_tables:
        if table.name in source_tables:
            table.to_metadata(chosen)
        else:
            notes.append(f"{table.name}: in the models but not in the source (left empty)")
    for name in sorted(source_tables - set(models.tables) - {MARKER}):
        notes.append(f"{name}: in the source but not in the models (not copied)")
    return chosen


def _migrate(location: Path, version_table: str, revisions: list[str]) -> Create:
    def create(engine: Engine) -> None:
        from storelayer.migrations.manager import MigrationManager

        with MigrationManager(
            engine.url, script_location=location, version_table=version_table
        ) as manager:
            for revision in revisions or ["heads"]:
                manager.upgrade(revision)

    return create


def _same_revision(source: list[str], target: list[str]) -> None:
    if source and target and source != target:
        raise BackupError(
            f"the source is at revision {', '.join(source)} but the target at "
            f"{', '.join(target)}: migrate the target to {', '.join(source)} first "
            "(nothing was copied)"
        )


def plan(source: Engine, target: Engine, known: SchemaSource) -> Plan:
    """Decide where the target's schema comes from and which tables move."""
    source_tables = _names(source) - {known.version_table}
    if not source_tables:
        raise BackupError("the source database has no tables to copy")
    revisions = _revision(source, known.version_table)
    location = known.migrations
    models = known.models
    if location is None and models is None:
        location, models = _reference_schema(revisions) or (None, None)
    notes: list[str] = []
    if models is not None:
        tables = _subset(models, source_tables, notes)
    elif known.data_only or location is not None:
        tables = MetaData()  # typed from the target, once it has the schema
    else:
        reflected = reflect(source, skip=frozenset({MARKER}))
        same = source.dialect.name == target.dialect.name
        tables, notes = target_metadata(reflected, same)
        return Plan(tables, "reflected from the source", tables.create_all, notes)
    refuse_cycles(tables)
    if known.data_only:
        _same_revision(revisions, _revision(target, known.version_table))
        origin, create = "already in the target (data only)", None
    elif location is not None:
        origin = f"migrations in {location} at {', '.join(revisions) or 'head'}"
        create = _migrate(location, known.version_table, revisions)
    else:
        origin, create = "the application's models", tables.create_all
    return Plan(tables, origin, create, notes, frozenset(source_tables))
