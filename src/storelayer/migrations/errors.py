"""Errors of migration runs (defined with the others in ``storelayer.errors``)."""

from storelayer.errors import MigrationError, MigrationLockTimeout

__all__ = ["MigrationError", "MigrationLockTimeout"]
