"""The one exception hierarchy of storelayer: everything derives from StorelayerError.

Where SQLAlchemy has a class for the same failure, storelayer's error derives from it
too (``Conflict`` is an ``IntegrityError``, ``PoolExhausted`` a ``TimeoutError``, ...), so
code written against SQLAlchemy keeps catching it. Such an error's text is storelayer's
message alone: no SQL, no parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc


class StorelayerError(Exception):
    """Base class of every error storelayer raises on purpose."""


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class SQLAlchemyTwin:
    """Mixin of a storelayer error that is also a SQLAlchemy error: its text is the
    message only (SQLAlchemy's would add the statement, parameters and a link), and it
    pickles whatever its constructor takes."""

    args: tuple[Any, ...]

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (type(self), self.args), dict(self.__dict__))


def _as_dbapi_error(error: sa_exc.DBAPIError, message: str, orig: BaseException | None) -> None:
    """Fill in what SQLAlchemy's ``DBAPIError`` carries: ``orig`` (the driver's error, when
    known), no statement, no parameters, a connection still valid."""
    sa_exc.StatementError.__init__(error, message, None, None, orig, hide_parameters=True)
    error.connection_invalidated = False


class ConfigurationError(StorelayerError):
    """The configuration (URL, environment, keyword arguments) is invalid."""


class BackendNotFound(ConfigurationError):
    """No installed and enabled backend serves the requested URL scheme or name."""


class PluginError(StorelayerError):
    """A plugin is malformed or conflicts with another plugin."""


class ConnectionFailed(SQLAlchemyTwin, StorelayerError, sa_exc.OperationalError):
    """The database could not be reached or refused the credentials (also SQLAlchemy's
    ``OperationalError``)."""

    def __init__(
        self, message: str, transient: bool = True, *, orig: BaseException | None = None
    ) -> None:
        _as_dbapi_error(self, message, orig)
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


class NotFound(SQLAlchemyTwin, StorelayerError, sa_exc.NoResultFound):
    """A row that was required does not exist (also SQLAlchemy's ``NoResultFound``)."""


class Conflict(SQLAlchemyTwin, StorelayerError, sa_exc.IntegrityError):
    """A write violated a unique, foreign-key or check constraint (also SQLAlchemy's
    ``IntegrityError``; ``orig`` is the driver's error when there was one)."""

    def __init__(
        self, message: str, constraint: str | None = None, *, orig: BaseException | None = None
    ) -> None:
        _as_dbapi_error(self, message, orig)
        self.constraint = constraint


class TransientError(StorelayerError):
    """A unit of work kept failing on transient errors until the retry budget ran out;
    or (``transient`` true) its connection was lost before its COMMIT completed and
    nothing of it was committed, so running it again may succeed (``run_in_transaction``
    does)."""

    def __init__(self, message: str, attempts: int, *, transient: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.transient = transient


class StatementTimeout(StorelayerError):
    """The server cancelled a statement that ran longer than ``statement_timeout``.
    Not retried: the same statement would run as long again."""


class CommitOutcomeUnknown(StorelayerError):
    """The connection was lost while COMMIT was in flight: the unit of work may or may
    not have been committed. It is not retried unless marked idempotent."""


class PoolExhausted(SQLAlchemyTwin, StorelayerError, sa_exc.TimeoutError):
    """Every pooled connection stayed in use for longer than the pool timeout (also
    SQLAlchemy's ``TimeoutError``)."""

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
