"""The concern objects of a backend, one small class each with working defaults: a plugin
subclasses those its database needs and sets an instance on its ``Backend`` class
(``errors = MyErrors()``), as Django's backends supply ``ops`` and ``creation``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, text

from storelayer.backend.bulk import MAX_PARAMETERS, alone, multirow_write, rows_by_parameters
from storelayer.errors import MigrationLockTimeout

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.sql import Executable

    from storelayer.backup.options import BackupOptions
    from storelayer.config import Settings

logger = logging.getLogger("storelayer.migrations")

#: ``progress(done, total)``; ``total`` is None when unknown.
Progress = Callable[[int, int | None], None]


class Errors:
    """``Backend.errors``: what a driver error means."""

    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying the whole unit of work may succeed (deadlock, serialization
        failure, lost connection, database is locked)."""
        return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated

    def is_connection_refused_for_good(self, exc: BaseException) -> bool:
        """Whether a failed connect is permanent (bad credentials, unknown database)."""
        return False

    def is_read_only(self, exc: BaseException) -> bool:
        """Whether a write failed because the database accepts only reads (a replica, a
        server or transaction in read-only mode): it becomes ``ReadOnlyDatabase``."""
        return False

    def is_statement_timeout(self, exc: BaseException) -> bool:
        """Whether the server cancelled a statement for running past its time limit: it
        becomes ``StatementTimeout``."""
        return False

    def misconfiguration(self, exc: BaseException) -> str | None:
        """For a failed connect that the configuration caused (a pooler refusing a
        start-up parameter): what to change, shown in a ``ConfigurationError`` and never
        retried; None for any other failure."""
        return None

    def constraint_name(self, error: sa_exc.IntegrityError) -> str | None:
        """The constraint an integrity error violated (or its columns), when the driver
        says: ``Conflict.constraint`` (``features.constraint_names``)."""
        return None

    def message(self, error: BaseException) -> str:
        """The driver's message for ``error`` without the data it may quote (a row's
        values, a parameter): what ``Conflict`` and ``InvalidValue`` say. The default
        keeps the first line (servers put the failing row on the next ones)."""
        orig = getattr(error, "orig", None) or error
        lines = str(orig).strip().splitlines()
        return " ".join(lines[0].split()) if lines else type(orig).__name__


@dataclass(frozen=True)
class ServerLimits:
    """What the server allows, as far as the backend can tell (None: unknown)."""

    # Connections the server accepts at once (PostgreSQL/MySQL max_connections).
    max_connections: int | None = None
    # Seconds after which the server closes an idle connection (MySQL wait_timeout).
    idle_timeout: float | None = None


#: What ``Operations.commit_marker`` returns for a unit that wrote when the server cannot
#: be asked about it after all (a lost COMMIT then raises ``CommitOutcomeUnknown``).
UNKNOWN_OUTCOME = "storelayer:unknown-outcome"


class TextedBatch(list[list[Any]]):
    """A batch of ``insert_columns`` (a list of values per column) that also carries
    ``texts``: for each column, None, or each value's text as the copy's checksum made it
    already - ``str()`` of an ``int``, ``float`` or ``Decimal``, ``isoformat()`` of a naive
    ``datetime``, the column holding values of that one type and NULLs (None in the texts
    at their places). A backend may use them instead of encoding those values again."""

    texts: list[Sequence[str | None] | None]


class Operations:
    """``Backend.ops``: SQL the core cannot build portably, and facts about the server."""

    #: The portable isolation levels a unit of work may ask for (``session(isolation=
    #: ...)``, ``run_in_transaction``), each mapped to the ``isolation_level`` SQLAlchemy
    #: sets on the connection for the unit; None where the database's write units give
    #: that level without a switch. A name left out is refused with a clear error.
    isolation_levels: ClassVar[Mapping[str, str | None]] = {
        "read_committed": "READ COMMITTED",
        "repeatable_read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
    }

    def isolation_options(self, level: str) -> dict[str, Any]:
        """Execution options that run a read-write unit at ``level`` (a value of
        ``isolation_levels``): by default SQLAlchemy's ``isolation_level``, set on the
        connection when the unit takes it and reset when it returns to the pool.
        Override where setting the level per transaction costs less (MySQL: one ``SET
        TRANSACTION`` before the unit's first statement, sent from ``configure_engine``)."""
        return {"isolation_level": level}

    def upsert(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> Executable:
        """One atomic insert-or-update statement for ``rows``; with no rows, the same
        statement without ``VALUES``, to be executed with many parameter sets."""
        raise NotImplementedError("this backend builds no upsert (features.upsert is off)")

    def bulk_upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> None:
        """Upsert ``rows`` (same keys, no conflict key twice) by the fastest correct path:
        by default ``upsert(table, [], ...)`` through the driver's executemany; override
        it where executemany is slow (psycopg2: one round trip a row)."""

        def statement() -> Any:
            return self.upsert(table, [], conflict_columns, update_columns)

        kind = ("upsert", tuple(conflict_columns), tuple(update_columns))
        self._write_rows(connection, statement, table, rows, kind)

    #: Whether bulk writes send multi-row ``VALUES`` statements made from the driver SQL
    #: (``backend.bulk``), as many rows each as ``split_rows`` says, with the values
    #: bound a column at a time: the fastest insert where the driver would send one
    #: statement a row (SQLite) or build each row's parameters (PyMySQL). Only where a
    #: failed statement is undone alone and the transaction goes on (SQLite, InnoDB):
    #: ``bulk_insert`` and ``bulk_upsert`` then write all their rows or none, taking a
    #: savepoint only when they send more than one statement, and a repository takes
    #: none around a write of one call.
    multirow_values: ClassVar[bool] = False

    def split_rows(self, values: list[list[Any]]) -> list[int]:
        """How many rows each statement of a multi-row write carries, in order, given
        the bound values (one list per placeholder of a row): by default as many as
        ``MAX_PARAMETERS`` parameters allow."""
        return rows_by_parameters(values, MAX_PARAMETERS)

    def bulk_insert(
        self, connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert ``rows`` (same keys) by the fastest correct path, column defaults
        applied: by default one executemany ``INSERT`` (multi-row ``VALUES`` batches),
        multi-row statements of the driver SQL where ``multirow_values``."""
        self._write_rows(connection, partial(insert, table), table, rows, "insert")

    def _write_rows(
        self,
        connection: Connection,
        statement: Callable[[], Any],
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        kind: Hashable,
    ) -> None:
        if not self.multirow_values:
            connection.execute(statement(), list(rows))
        elif not multirow_write(connection, statement, table, rows, kind, self.split_rows):
            with alone(connection, len(rows)):  # the driver may send a statement a row
                connection.execute(statement(), list(rows))

    def insert_columns(
        self, connection: Connection, table: Table, batches: Iterable[Sequence[Sequence[Any]]]
    ) -> None:
        """Insert every batch of ``batches`` into ``table``: each batch holds a sequence of
        values per column of ``table``, in its column order (``storelayer copy``). By
        default one ``bulk_insert`` a batch; a backend with a streaming path (PostgreSQL's
        ``COPY``) sends them all in one statement, consuming ``batches`` as it sends."""
        keys = [column.key for column in table.columns]
        for columns in batches:
            rows = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
            self.bulk_insert(connection, table, rows)

    def loading(
        self, connection: Connection, tables: Sequence[Table]
    ) -> AbstractContextManager[None]:
        """While the block fills ``tables`` in ``connection``'s transaction
        (``storelayer copy``), the backend may check their constraints once at the end
        instead of row by row; every constraint holds, checked, when the block ends
        without error (one that does not raises). By default nothing changes."""
        return nullcontext()

    def reset_sequences(self, connection: Connection, tables: Sequence[Table]) -> None:
        """After rows were inserted with explicit keys (``storelayer copy``), move the
        tables' sequences or auto-increment counters past the largest key."""

    def server_version(self, connection: Connection) -> str:
        """The server's version as a string."""
        info = connection.dialect.server_version_info or ()
        return ".".join(str(part) for part in info) or "unknown"

    def server_limits(self, dbapi_connection: Any) -> ServerLimits:
        """The server's connection limits, read on the first connection of an engine
        (to warn about oversized pools and derive ``pool_recycle``)."""
        return ServerLimits()

    def commit_marker(self, connection: Connection) -> Any:
        """Just before the COMMIT of a read-write unit, on its connection, where
        ``features.commit_outcome``: what names its transaction to ``committed()`` if
        the connection is lost during COMMIT (PostgreSQL: its transaction id); None when
        the unit wrote nothing (a lost COMMIT of it lost nothing: it runs again);
        ``UNKNOWN_OUTCOME`` when it wrote but cannot be asked about."""
        return UNKNOWN_OUTCOME

    def committed(self, connection: Connection, marker: Any) -> bool | None:
        """On a new connection, after the COMMIT of the transaction ``marker`` names was
        lost: True if it committed, False if it was rolled back, None if the server
        cannot tell (the unit then raises ``CommitOutcomeUnknown``)."""
        return None


class Replication:
    """``Backend.replication``: what read routing asks a replica and its primary
    (``features.replicas``; docs/operations/replicas.md). The defaults know nothing."""

    def lag(self, connection: Connection) -> float | None:
        """Seconds this replica is behind its primary, 0.0 when caught up; None when it
        is not replicating or cannot tell (the replica then gets no reads)."""
        return None

    def is_primary(self, connection: Connection) -> bool:
        """Whether the server takes writes as a primary (a replica that was promoted:
        routing drops it and reconnects, so that a URL choosing a standby resolves
        again); False when unknown."""
        return False

    def pool_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """Pool settings of a replica's engine that differ from ``engine_options()``
        (the user's explicit pool settings still win). Pure: no connection is made."""
        return {}

    def write_position(self, connection: Connection) -> str | None:
        """The primary's write position, read on ``connection`` right after a commit: a
        replica that has replayed it sees that commit. None when the backend cannot
        tell (read-your-writes then falls back to a time window)."""
        return None

    def has_replayed(self, connection: Connection, position: str) -> bool | None:
        """Whether the replica behind ``connection`` has replayed ``position`` (a value
        of ``write_position()``), without waiting; None when the backend cannot tell.
        Raise ``ValueError`` for a position this backend never writes."""
        return None


class BackupStrategy(Protocol):
    """What ``Backend.backups`` names: usually the plugin's ``backup`` module."""

    def backup(
        self,
        engine: Engine,
        target: Path,
        progress: Progress | None = None,
        options: BackupOptions | None = None,
    ) -> str | None: ...

    def restore(
        self,
        engine: Engine,
        source: Path,
        progress: Progress | None = None,
        options: BackupOptions | None = None,
    ) -> None: ...

    def inspect(self, source: Path) -> dict[str, int]: ...


class NoBackups:
    """The default ``Backend.backups``: no native dumps (``features.backup_format`` None)."""

    def backup(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("this backend has no backup strategy (Backend.backups)")

    restore = inspect = backup


class Provisioning:
    """``Backend.provisioning``: databases for test runs, ``verify-backup`` and ``copy``."""

    def create_database(self, server_url: URL, name: str) -> URL:
        """Create database ``name`` on the server and return its URL."""
        raise NotImplementedError("this backend cannot create databases")

    def drop_database(self, server_url: URL, name: str) -> None:
        """Drop database ``name`` from the server, if it exists."""
        raise NotImplementedError("this backend cannot drop databases")

    def embedded_test_url(self, directory: Path, name: str) -> URL:
        """For an embedded database (``features.server`` false): a fresh test database."""
        raise NotImplementedError("this backend is not an embedded database")


class ShellCommand(NamedTuple):
    """A client's command line, its whole environment, and the descriptors it inherits
    (a credential file it reads as ``/dev/fd/N``)."""

    args: list[str]
    env: dict[str, str]
    keep_fds: tuple[int, ...] = ()


class Client:
    """``Backend.client``: the database's own command-line client (``storelayer dbshell``)."""

    def shell(
        self, url: URL, parameters: Sequence[str]
    ) -> AbstractContextManager[ShellCommand]:
        """The client's command for the database at ``url``, the user's ``parameters``
        appended, valid while the block runs: credentials travel in ``env`` or in a 0600
        file, never in ``args``. A missing client is an error naming what to install."""
        raise NotImplementedError("this backend names no command-line client (Backend.client)")


#: What ``report`` is told before a migration lock is waited for.
WAITING = "waiting for the migration lock: another process is migrating this database"
#: Seconds between two attempts to take a lock that cannot be waited on natively.
POLL_SECONDS = 0.2


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"storelayer-migrate:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def timed_out(name: str, timeout: float) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"gave up after {timeout:g} s waiting for the migration lock {name!r}: another "
        "process is still migrating this database (or died holding a lock); try again later"
    )


def finish_transaction(connection: Connection) -> None:
    """End whatever transaction the lock statement began, keeping session locks."""
    if connection.in_transaction():
        connection.commit()


def release_lock(connection: Connection, statement: str, params: dict[str, Any]) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text(statement), params)
        finish_transaction(connection)
    except sa_exc.SQLAlchemyError as error:  # a lost connection has released the lock
        logger.warning("could not release the migration lock: %s", error)


@contextmanager
def no_migration_lock(
    connection: Connection, name: str, timeout: float, report: Callable[[str], None]
) -> Iterator[None]:
    """For a database without a known lock: run one migrator at a time yourself."""
    logger.warning(
        "no migration lock for dialect %r: do not run two migrations at once",
        connection.dialect.name,
    )
    yield


class Migrations:
    """``Backend.migrations``: the lock that serializes ``storelayer migrate`` runs."""

    def lock(
        self, connection: Connection, name: str, timeout: float, report: Callable[[str], None]
    ) -> AbstractContextManager[None]:
        """Hold a database-wide lock for the block, waiting at most ``timeout`` seconds
        (``report(WAITING)`` first, ``timed_out()`` after), on the migrations' connection
        outside a transaction. The default takes no lock and logs a warning."""
        return no_migration_lock(connection, name, timeout, report)
