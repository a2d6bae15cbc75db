"""The one exception hierarchy of storelayer: everything derives from StorelayerError."""

from __future__ import annotations


class StorelayerError(Exception):
    """Base class of every error storelayer raises on purpose."""


class ConfigurationError(StorelayerError):
    """The configuration (URL, environment, keyword arguments) is invalid."""


class BackendNotFound(ConfigurationError):
    """No installed and enabled backend serves the requested URL scheme or name."""


class PluginError(StorelayerError):
    """A plugin is malformed or conflicts with another plugin."""


class ConnectionFailed(StorelayerError):
    """The database could not be reached or refused the credentials."""

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        #: False when retrying cannot help (bad credentials, unknown database).
        self.transient = transient


class QueryError(StorelayerError):
    """A query was built from invalid input (unknown field, bad lookup, bad value)."""


class InvalidValue(QueryError):
    """A value its column cannot hold: too long, out of range, NULL where the column is
    NOT NULL, not one of an enum's values, a NUL character in text, larger than the
    server accepts. Raised before anything is written, the same on every backend; the
    message names the column and the limit, never the value."""

    def __init__(self, message: str, column: str | None = None, limit: str | None = None) -> None:
        super().__init__(message)
        #: ``Model.column`` (or the table's column name when only the database knew).
        self.column = column
        #: The limit the value broke, as text ("64 characters", "NOT NULL"), if known.
        self.limit = limit


class ReadOnlySession(StorelayerError):
    """A write was sent in a ``read_session()``: the database refused it (its read-only
    transaction mode) and nothing changed. Write in ``session()`` instead."""


class NotFound(StorelayerError):
    """A row that was required does not exist."""


class Conflict(StorelayerError):
    """A write violated a unique, foreign-key or check constraint."""

    def __init__(self, message: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class TransientError(StorelayerError):
    """A unit of work kept failing on transient errors until the retry budget ran out."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class CommitOutcomeUnknown(StorelayerError):
    """The connection was lost while COMMIT was in flight: the unit of work may or may
    not have been committed. It is not retried unless marked idempotent."""


class PoolExhausted(StorelayerError):
    """Every pooled connection stayed in use for longer than the pool timeout."""

    def __init__(self, message: str, pool_size: int, max_overflow: int, timeout: float) -> None:
        super().__init__(message)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.timeout = timeout


class ReadOnlyDatabase(ConfigurationError):
    """A write reached a database that only accepts reads (a replica given as primary)."""


class BackupError(StorelayerError):
    """A backup or restore failed, or an artifact did not verify."""


class ReplicaUnavailable(StorelayerError):
    """No replica could serve a read and falling back to the primary was not allowed."""


class MigrationError(StorelayerError):
    """A migration command failed: unknown revision, database behind the migrations,
    missing script directory, a lock not obtained in time, ..."""


class MigrationLockTimeout(MigrationError):
    """Another process held the migration lock for longer than the lock timeout."""
