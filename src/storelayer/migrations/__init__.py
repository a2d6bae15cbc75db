"""Migrations on storelayer: Alembic with a lock, batch mode where the backend needs it,
and a Python API (``MigrationManager``) and CLI (``storelayer migrate``) over it."""

from storelayer.migrations.environment import run_migrations
from storelayer.migrations.errors import MigrationError, MigrationLockTimeout
from storelayer.migrations.locks import DEFAULT_LOCK_TIMEOUT, migration_lock
from storelayer.migrations.manager import MigrationManager, RevisionInfo
from storelayer.migrations.scaffold import reference_script_location
from storelayer.migrations.schema import SchemaReport

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MigrationError",
    "MigrationLockTimeout",
    "MigrationManager",
    "RevisionInfo",
    "SchemaReport",
    "migration_lock",
    "reference_script_location",
    "run_migrations",
]
