"""Errors of migration runs."""

from __future__ import annotations

from storelayer.errors import StorelayerError


class MigrationError(StorelayerError):
    """A migration command failed: unknown revision, database behind the migrations,
    missing script directory, a lock not obtained in time, ..."""


class MigrationLockTimeout(MigrationError):
    """Another process held the migration lock for longer than the lock timeout."""
