"""Database-wide locks that serialize migration runs.

Two processes that run ``storelayer migrate upgrade`` at the same moment must not both
apply a migration: the first takes the lock and migrates; the second waits, then reads
the version table and finds nothing to do. The lock is taken before Alembic reads the
version table and released after the last migration is committed.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), scoped to the
  database, keyed by a hash of the version table's name.
* MySQL/MariaDB: a named user lock (``GET_LOCK``), whose name includes the database
  (user locks are server-wide).
* SQLite: one write transaction around the whole run (``BEGIN IMMEDIATE``, or
  ``BEGIN EXCLUSIVE`` on an engine that does not begin transactions itself), with
  foreign keys off for Alembic's batch table rebuilds and checked before the commit.

Each backend plugin supplies its strategy as ``Backend.migrations`` (a
``storelayer.backend.Migrations``); this module holds the entry point. What strategies
share (``WAITING``, ``lock_key``, ``timed_out``...) lives with that concern.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

# What lock strategies share, re-exported for plugins written against this module.
from storelayer.backend.concerns import POLL_SECONDS as POLL_SECONDS
from storelayer.backend.concerns import WAITING as WAITING
from storelayer.backend.concerns import finish_transaction as finish_transaction
from storelayer.backend.concerns import lock_key as lock_key
from storelayer.backend.concerns import release_lock as release_lock
from storelayer.backend.concerns import timed_out as timed_out

if TYPE_CHECKING:
    from storelayer.backend import Backend

logger = logging.getLogger("storelayer.migrations")

Report = Callable[[str], None]

#: Seconds a migrator waits for another one to finish.
DEFAULT_LOCK_TIMEOUT = 600.0


def migration_lock(
    connection: Connection,
    *,
    name: str = "alembic_version",
    backend: Backend | None = None,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    report: Report | None = None,
) -> AbstractContextManager[None]:
    """Hold the database's migration lock named ``name`` (the version table) for the
    block, waiting at most ``timeout`` seconds; ``report`` is told when it has to wait.

    Start outside a transaction; PostgreSQL and MySQL locks survive commits, the SQLite
    lock *is* the block's transaction (committed when the block ends)."""
    if backend is None:
        from storelayer.plugins import get_plugin_manager

        backend = get_plugin_manager().resolve(connection.engine.url.drivername)
    return backend.migrations.lock(connection, name, timeout, report or logger.info)
