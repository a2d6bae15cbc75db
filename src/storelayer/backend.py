"""The ``Backend`` base class a backend plugin subclasses, and its capability flags."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, pool
from sqlalchemy.engine import URL

from storelayer.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql import Executable

    from storelayer.backup.options import BackupOptions
    from storelayer.config import Settings

#: Execution option of ``read_session(autocommit=True)`` connections, for backends
#: that run those reads without a transaction by their own means.
AUTOCOMMIT_OPTION = "storelayer_autocommit"

#: ``progress(done, total)``; ``total`` is None when unknown.
Progress = Callable[[int, int | None], None]


def queue_pool_options(
    defaults: Mapping[str, Any], connect_args: Mapping[str, Any], settings: Settings
) -> dict[str, Any]:
    """``engine_options()`` of a server backend: a ``QueuePool`` with the backend's
    ``defaults`` (sizes, timeout, recycle), pre-ping, its ``connect_args``, and the
    pool settings the user set explicitly on top."""
    options: dict[str, Any] = {
        "poolclass": pool.QueuePool,
        **defaults,
        "pool_pre_ping": True,
        "connect_args": dict(connect_args),
    }
    options.update(settings.pool_overrides())
    return options


def on_conflict_upsert(
    insert: Callable[[Table], Any],
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> Executable:
    """``INSERT ... ON CONFLICT (...) DO UPDATE`` (``DO NOTHING`` without update
    columns), built with a dialect's ``insert`` (PostgreSQL's or SQLite's)."""
    stmt = insert(table).values(list(rows)) if rows else insert(table)
    if not update_columns:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_columns))  # type: ignore[no-any-return]
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(conflict_columns),
        set_={name: stmt.excluded[name] for name in update_columns},
    )


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


@dataclass(frozen=True)
class Features:
    """What a backend can do. The core and the conformance suite branch on these, never on
    a backend's name."""

    # Can INSERT/UPDATE/DELETE return rows (RETURNING)?
    returning: bool = False
    # Does Backend.upsert() build one atomic insert-or-update statement?
    upsert: bool = False
    # Does SELECT ... FOR UPDATE take row locks? (False: the whole database is locked.)
    for_update: bool = False
    # Does SELECT ... FOR UPDATE SKIP LOCKED exist?
    skip_locked: bool = False
    # Can a transaction hold savepoints?
    savepoints: bool = True
    # Can reads be routed to replicas whose lag the backend measures?
    replicas: bool = False
    # Does the driver stream results through a server-side cursor?
    server_side_cursors: bool = False
    # Is DDL transactional (rolled back with its transaction)?
    transactional_ddl: bool = False
    # Does ALTER TABLE need Alembic's batch mode (copy, then move)?
    batch_alter: bool = False
    # Is there one writer at a time for the whole database?
    single_writer: bool = False
    # Does the database keep the time zone of a timezone-aware datetime?
    timezone_aware_datetimes: bool = False
    # Is the database a server on which a test run creates and drops databases?
    server: bool = True
    # The native backup format (e.g. "sqlite-online", "pg_dump-custom"), None if none.
    backup_format: str | None = None


@dataclass(frozen=True)
class ServerLimits:
    """What the server allows, as far as the backend can tell (None: unknown)."""

    # Connections the server accepts at once (PostgreSQL/MySQL max_connections).
    max_connections: int | None = None
    # Seconds after which the server closes an idle connection (MySQL wait_timeout).
    idle_timeout: float | None = None


class Backend:
    """A database backend. Subclass it, set the identity attributes, override what your
    database needs, and register an instance from ``storelayer_register_backends``.

    Every method has a working default, so a minimal backend sets ``name``, ``schemes``,
    ``dialect`` and ``default_driver`` only.
    """

    #: Unique name, used by ``STORELAYER_BACKEND`` and ``connect(backend=...)``.
    name: ClassVar[str] = ""
    #: URL schemes served (the part before ``+driver``), e.g. ``("postgresql", "postgres")``.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: The SQLAlchemy dialect every scheme maps to.
    dialect: ClassVar[str] = ""
    #: Driver used when the URL names none (``postgresql://`` -> ``postgresql+psycopg2``).
    default_driver: ClassVar[str | None] = None
    #: The asyncio driver ``connect_async()`` swaps in (``aiosqlite``, ``psycopg``...);
    #: None when the backend offers no async API.
    async_driver: ClassVar[str | None] = None
    #: Capability flags.
    features: ClassVar[Features] = Features()
    #: The backup strategy (``backup``, ``restore``, ``inspect``): usually the plugin's
    #: ``backup`` module. None: the backend has no backups.
    backups: ClassVar[BackupStrategy | None] = None
    #: Server the test suite provisions databases on when ``STORELAYER_TEST_<NAME>_URL``
    #: is unset; None for an embedded database.
    default_test_url: ClassVar[str | None] = None
    #: What to install to get this backend (shown when it is missing or broken).
    install_hint: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} schemes={list(self.schemes)}>"

    # -- URLs and engines -------------------------------------------------------------

    def normalize_url(self, url: URL) -> URL:
        """Map a pasted URL onto the dialect and default driver (``postgres://`` ->
        ``postgresql+psycopg2://``)."""
        scheme, _, driver = url.drivername.partition("+")
        driver = driver or self.default_driver or ""
        drivername = f"{self.dialect or scheme}+{driver}" if driver else self.dialect or scheme
        return url.set(drivername=drivername)

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """Keyword arguments for ``sqlalchemy.create_engine``: pool class and sizes,
        recycle, pre-ping, ``connect_args``. Pure: no connection is made."""
        options: dict[str, Any] = {"pool_pre_ping": True}
        options.update(settings.pool_overrides())
        return options

    def async_url(self, url: URL) -> URL:
        """The same database through ``async_driver`` (the user configures one URL)."""
        if not self.async_driver:
            raise ConfigurationError(
                f"backend {self.name!r} has no async driver; its plugin must set "
                "Backend.async_driver to use connect_async()"
            )
        return url.set(drivername=f"{self.dialect or url.get_backend_name()}+{self.async_driver}")

    def async_engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """``create_async_engine`` arguments: the sync tuning with an asyncio-safe pool.
        Override when the async driver takes other ``connect_args``."""
        options = self.engine_options(url, settings)
        if options.get("poolclass") is pool.QueuePool:
            options["poolclass"] = pool.AsyncAdaptedQueuePool
        return options

    def autocommit_read_options(self) -> dict[str, Any]:
        """Execution options of ``read_session(autocommit=True)``: reads without a
        transaction. Return ``{}`` where switching a connection to autocommit costs
        more round trips than the transaction it saves (MySQL), or
        ``{AUTOCOMMIT_OPTION: True}`` to switch the driver yourself in
        ``configure_engine`` (PostgreSQL: SQLAlchemy's isolation switch sends a ``SET``
        each way, psycopg's ``autocommit`` attribute sends nothing)."""
        return {"isolation_level": "AUTOCOMMIT", AUTOCOMMIT_OPTION: True}

    def on_connect(self, dbapi_connection: Any) -> None:
        """Set up each new DBAPI connection (pragmas, session variables)."""

    def configure_engine(self, engine: Engine) -> None:
        """Attach event listeners the backend needs beyond ``on_connect``."""

    # -- errors ------------------------------------------------------------------------

    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying the whole unit of work may succeed (deadlock, serialization
        failure, lost connection, database is locked)."""
        return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated

    def is_connection_refused_for_good(self, exc: BaseException) -> bool:
        """Whether a failed connect is permanent (bad credentials, unknown database)."""
        return False

    def is_read_only_error(self, exc: BaseException) -> bool:
        """Whether a write failed because the database accepts only reads (a replica, a
        server or transaction in read-only mode)."""
        return False

    def constraint_name(self, exc: sa_exc.IntegrityError) -> str | None:
        """The name of the constraint an integrity error violated, when the driver says."""
        return None

    # -- SQL ---------------------------------------------------------------------------

    def upsert(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> Executable:
        """One atomic insert-or-update statement for ``rows``; with no rows, the same
        statement without ``VALUES``, to be executed with many parameter sets."""
        raise NotImplementedError(f"backend {self.name!r} does not implement upsert()")

    def bulk_upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> None:
        """Upsert ``rows`` (all with the same keys, no conflict key twice) by the
        fastest correct path. The default executes ``upsert(table, [], ...)`` with
        every row as a parameter set: the driver's executemany (SQLite steps one
        prepared statement; PyMySQL rewrites it into multi-row statements). A plugin
        may override it where executemany is slow (psycopg2: one round trip a row)."""
        stmt = self.upsert(table, [], conflict_columns, update_columns)
        connection.execute(stmt, list(rows))

    def bulk_insert(
        self, connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert ``rows`` (all with the same keys) by the fastest correct path.

        The default is one executemany ``INSERT``, which SQLAlchemy sends as multi-row
        ``VALUES`` batches; a plugin may override it (PostgreSQL: ``COPY``). Column
        defaults declared on the table must still apply.
        """
        connection.execute(insert(table), list(rows))

    def server_version(self, connection: Connection) -> str:
        """The server's version as a string."""
        info = connection.dialect.server_version_info or ()
        return ".".join(str(part) for part in info) or "unknown"

    def server_limits(self, dbapi_connection: Any) -> ServerLimits:
        """The server's connection limits, read on the first connection of an engine
        (to warn about oversized pools and derive ``pool_recycle``)."""
        return ServerLimits()

    def replica_lag(self, connection: Connection) -> float | None:
        """Seconds this replica is behind its primary, or None if unknown."""
        return None

    # -- replication (read routing; see docs/operations/replicas.md) -------------------

    def replica_pool_options(self, url: URL, settings: Settings) -> dict[str, Any]:
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

    # -- migrations --------------------------------------------------------------------

    def migration_lock(
        self,
        connection: Connection,
        name: str,
        timeout: float,
        report: Callable[[str], None],
    ) -> AbstractContextManager[None]:
        """Hold a database-wide lock that serializes migration runs for the block,
        waiting at most ``timeout`` seconds (``report`` is told before waiting; the
        ``MigrationLockTimeout`` of ``storelayer.migrations`` ends the wait). Called
        outside a transaction on the connection the migrations run on. The default
        takes no lock and logs a warning."""
        from storelayer.migrations.locks import no_lock

        return no_lock(connection, name, timeout, report)

    # -- backups -----------------------------------------------------------------------

    def backup(
        self,
        engine: Engine,
        target: Path,
        progress: Progress | None = None,
        options: BackupOptions | None = None,
    ) -> str | None:
        """Write a consistent native dump of the database to the new file ``target``;
        return the tool that wrote it, with its version, if any."""
        return self._backups().backup(engine, target, progress, options)

    def restore(
        self,
        engine: Engine,
        source: Path,
        progress: Progress | None = None,
        options: BackupOptions | None = None,
    ) -> None:
        """Restore a native dump written by ``backup()`` into the database."""
        self._backups().restore(engine, source, progress, options)

    def inspect_backup(self, source: Path) -> dict[str, int]:
        """Read the whole native dump ``source`` and return its rows per table (``name``,
        or ``schema.name`` outside the default schema); a damaged dump is a
        ``BackupError``."""
        return self._backups().inspect(source)

    def _backups(self) -> BackupStrategy:
        if self.backups is None:
            raise NotImplementedError(
                f"backend {self.name!r} has no backup strategy: its plugin sets "
                "Backend.backups (or overrides backup/restore/inspect_backup)"
            )
        return self.backups

    def reset_sequences(self, connection: Connection, tables: Sequence[Table]) -> None:
        """After rows were inserted with explicit keys (``storelayer copy``), move the
        tables' sequences or auto-increment counters past the largest key."""

    # -- provisioning (tests, copy, restore staging) -----------------------------------

    def create_database(self, server_url: URL, name: str) -> URL:
        """Create database ``name`` on the server and return its URL."""
        raise NotImplementedError(f"backend {self.name!r} cannot create databases")

    def drop_database(self, server_url: URL, name: str) -> None:
        """Drop database ``name`` from the server, if it exists."""
        raise NotImplementedError(f"backend {self.name!r} cannot drop databases")

    def embedded_test_url(self, directory: Path, name: str) -> URL:
        """For an embedded database (``features.server`` false): a fresh test database."""
        raise NotImplementedError(f"backend {self.name!r} is not an embedded database")
