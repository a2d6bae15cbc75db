"""``storelayer.compat.guide.migrations``: the guide's migration and backup functions,
which take an ``Engine``, over ``MigrationManager`` and ``Database.backup``/``restore``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, Engine, make_url

from storelayer.backup import BackupManifest, RestoreReport
from storelayer.compat.guide.session import _default, default_database
from storelayer.database import Database, connect
from storelayer.migrations import MigrationManager as _Manager
from storelayer.migrations import SchemaReport
from storelayer.migrations.schema import compare, report
from storelayer.reference.models import metadata

__all__ = [
    "GUIDE_VERSION_TABLE",
    "MigrationManager",
    "backup_database",
    "get_current_revision",
    "restore_database",
    "verify_schema",
]

#: Where the guide's own migration directory records its revisions (the reference
#: schema's migrations, which ``init_db`` runs, use ``alembic_version``).
GUIDE_VERSION_TABLE = "migrations_version"
#: The reference schema's version table.
REFERENCE_VERSION_TABLE = "alembic_version"


class MigrationManager(_Manager):
    """storelayer's ``MigrationManager`` on the default database, over the migration
    directory ``directory`` (default ``./migrations``, written by ``init()``) for the
    reference schema's models."""

    def __init__(
        self,
        directory: str | Path = "migrations",
        database: Database | str | URL | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("version_table", GUIDE_VERSION_TABLE)
        super().__init__(
            database if database is not None else default_database(),
            script_location=directory,
            target_metadata=metadata,
            **options,
        )


@contextmanager
def database_of(engine: Engine) -> Iterator[Database]:
    """The default database when ``engine`` is its engine, else a ``Database`` opened
    on the engine's URL for the call."""
    for manager in _default:
        if manager.engine is engine:
            yield manager.database
            return
    with connect(engine.url) as database:
        yield database


def verify_schema(engine: Engine) -> SchemaReport:
    """Compare the database with the reference schema's models:
    ``result["valid"]``, ``["missing_tables"]``, ``["extra_tables"]``, ``["column_issues"]``."""
    with engine.connect() as connection:
        return report(compare(connection, metadata, REFERENCE_VERSION_TABLE))


def get_current_revision(engine: Engine) -> str | None:
    """The reference schema's revision the database is at (None before the first)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": REFERENCE_VERSION_TABLE}
        )
        return context.get_current_revision()


def backup_database(engine: Engine, path: str | Path, **options: Any) -> BackupManifest:
    """Back up the database of ``engine`` into one verified artifact at ``path``
    (``Database.backup``: every backend, not only SQLite)."""
    with database_of(engine) as database:
        return database.backup(path, **options)


def restore_database(
    backup_path: str | Path, target_path: str | Path | URL, **options: Any
) -> RestoreReport:
    """Restore the artifact at ``backup_path`` into ``target_path``: a SQLite file, or
    a database URL (``Database.restore``; ``force=True`` to overwrite a non-empty
    database)."""
    text = str(target_path) if not isinstance(target_path, URL) else ""
    url = target_path if isinstance(target_path, URL) else make_url(text) if "://" in text \
        else URL.create("sqlite", database=str(Path(text).resolve()))
    with connect(url) as database:
        return database.restore(backup_path, **options)
