"""The contract of a backend plugin: ``Backend`` (identity, URLs and engine tuning), its
capability flags ``Features``, and the concern objects it supplies, one small class each
(``storelayer.backend.concerns``): ``errors``, ``ops``, ``replication``, ``backups``,
``provisioning``, ``migrations``, ``client``. Every member has a working default."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import InitVar, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import create_engine, pool, types
from sqlalchemy.engine import URL

from storelayer.backend._moved import BackendType, moved_member
from storelayer.backend.concerns import UNKNOWN_OUTCOME as UNKNOWN_OUTCOME
from storelayer.backend.concerns import BackupStrategy as BackupStrategy
from storelayer.backend.concerns import Client as Client
from storelayer.backend.concerns import Errors as Errors
from storelayer.backend.concerns import Migrations as Migrations
from storelayer.backend.concerns import NoBackups as NoBackups
from storelayer.backend.concerns import Operations as Operations
from storelayer.backend.concerns import Progress as Progress
from storelayer.backend.concerns import Provisioning as Provisioning
from storelayer.backend.concerns import Replication as Replication
from storelayer.backend.concerns import ServerLimits as ServerLimits
from storelayer.backend.concerns import ShellCommand as ShellCommand
from storelayer.backend.readonly import READ_ONLY_OPTION as READ_ONLY_OPTION
from storelayer.backend.readonly import SELECTS_ONLY_OPTION as SELECTS_ONLY_OPTION
from storelayer.backend.readonly import enforce_read_only_units as enforce_read_only_units
from storelayer.datetimes import (
    AwareAsUTC,
    return_aware_datetimes_as_utc,
    store_aware_datetimes_as_utc,
)
from storelayer.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql import Executable

    from storelayer.config import Settings

#: Execution option of ``read_session(autocommit=True)`` connections, for backends
#: that run those reads without a transaction by their own means.
AUTOCOMMIT_OPTION = "storelayer_autocommit"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: Data the server has not acknowledged for this long (a network that silently drops
#: packets) fails the connection, instead of ~15 minutes of retransmissions. A slow
#: query is not affected: the server's kernel acknowledges what it receives.
TCP_USER_TIMEOUT_MS = 10_000


def connect_timeout_seconds(settings: Settings) -> int:
    """``connect_timeout`` for drivers that take whole seconds and wait forever on (or
    reject) 0: rounded up, at least 1."""
    return max(1, math.ceil(settings.connect_timeout))


def queue_pool_options(
    url: URL, connect_args: Mapping[str, Any], settings: Settings, pool_recycle: int
) -> dict[str, Any]:
    """``engine_options()`` of a server backend: a pre-pinged ``QueuePool`` of 5
    connections and 10 more on demand (30 s to wait for one), recycled after
    ``pool_recycle`` seconds; ``connect_args`` but those the URL query sets; the pool
    settings the user set explicitly on top."""
    options: dict[str, Any] = {
        "poolclass": pool.QueuePool,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": 30,
        "pool_recycle": pool_recycle,
        "pool_pre_ping": True,
        "connect_args": {k: v for k, v in connect_args.items() if k not in url.query},
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


@contextmanager
def server_connection(
    url: URL, name: str, max_identifier_length: int, connect_args: Mapping[str, Any]
) -> Iterator[tuple[Connection, str]]:
    """For ``CREATE DATABASE name`` and ``DROP DATABASE``: an AUTOCOMMIT connection to the
    server at ``url`` (a normalized URL) and ``name``, checked to be a plain identifier
    the server keeps as is, quoted."""
    if not _IDENTIFIER.match(name) or len(name) > max_identifier_length:
        raise ConfigurationError(
            f"database name {name!r} is not a plain identifier: use letters, digits and "
            f"underscores, starting with a letter or underscore, at most "
            f"{max_identifier_length} characters"
        )
    engine = create_engine(
        url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool, connect_args=connect_args
    )
    try:
        with engine.connect() as connection:
            yield connection, engine.dialect.identifier_preparer.quote_identifier(name)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Features:
    """What a backend can do. The core and the conformance suite branch on these, never on
    a backend's name. What nearly every database does defaults to True: declare what
    yours lacks."""

    # Can INSERT/UPDATE/DELETE return rows (RETURNING)?
    returning: bool = False
    # Does ops.upsert() build one atomic insert-or-update statement?
    upsert: bool = False
    # Does get(..., for_update=True) keep the row from other writers until the unit of work
    # ends (a row lock, or a write lock on the whole database taken when the unit begins)?
    row_locks: bool = True
    # Are those row-level locks (SELECT ... FOR UPDATE), so that two units can deadlock?
    for_update: bool = False
    # Does SELECT ... FOR UPDATE SKIP LOCKED pass over the rows other units locked?
    skip_locked: bool = False
    # After a COMMIT lost with its connection, can the server say whether it committed
    # (ops.commit_marker and ops.committed)? If not, the unit raises CommitOutcomeUnknown.
    commit_outcome: bool = False
    # Can a transaction hold savepoints?
    savepoints: bool = True
    # Are foreign keys enforced (a write that breaks one is a Conflict)?
    foreign_keys: bool = True
    # Does a Conflict name the violated constraint, or its columns (errors.constraint_name)?
    constraint_names: bool = True
    # Can reads be routed to replicas whose lag the backend measures?
    replicas: bool = False
    # Is DDL transactional (rolled back with its transaction)?
    transactional_ddl: bool = False
    # Does ALTER TABLE need Alembic's batch mode (copy, then move)?
    batch_alter: bool = False
    # Does the database keep the time zone of a timezone-aware datetime? (If not, the
    # default configure_engine() stores an aware datetime as its UTC instant.)
    timezone_aware_datetimes: bool = False
    # Is the database a server on which a test run creates and drops databases?
    server: bool = True
    # The native backup format (e.g. "sqlite-online", "pg_dump-custom"), None if none.
    backup_format: str | None = None
    # Deprecated and ignored, nothing read them (single_writer: row_locks, not for_update).
    server_side_cursors: InitVar[bool] = False
    single_writer: InitVar[bool] = False


class Backend(metaclass=BackendType):
    """A database backend: subclass it, set the identity attributes, override the URL and
    engine tuning and the concern objects your database needs, and register an instance
    from ``storelayer_register_backends``. Everything has a working default, so a minimal
    backend sets ``name``, ``schemes``, ``dialect``, ``default_driver`` and ``features``."""

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
    #: Server the test suite provisions databases on when ``STORELAYER_TEST_<NAME>_URL``
    #: is unset; None for an embedded database.
    default_test_url: ClassVar[str | None] = None
    #: What to install to get this backend (shown when it is missing or broken).
    install_hint: ClassVar[str | None] = None

    #: What driver errors mean: retries, ``ReadOnlyDatabase``, ``Conflict`` names.
    errors: ClassVar[Errors] = Errors()
    #: SQL the core cannot build portably (upserts, bulk paths) and server facts.
    ops: ClassVar[Operations] = Operations()
    #: Replica lag and read-your-writes positions.
    replication: ClassVar[Replication] = Replication()
    #: Native dumps (``backup``, ``restore``, ``inspect``): usually the plugin's module.
    backups: ClassVar[BackupStrategy] = NoBackups()
    #: Databases for test runs, ``verify-backup`` and ``copy``.
    provisioning: ClassVar[Provisioning] = Provisioning()
    #: The lock that serializes ``storelayer migrate`` runs.
    migrations: ClassVar[Migrations] = Migrations()
    #: The database's own command-line client (``storelayer dbshell``).
    client: ClassVar[Client] = Client()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} schemes={list(self.schemes)}>"

    if not TYPE_CHECKING:  # old names (storelayer.backend._moved), unseen by type checkers

        def __getattr__(self, name: str) -> Any:
            return moved_member(self, name)

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
        """Attach event listeners the backend needs beyond ``on_connect``. The default
        makes ``DateTime(timezone=True)`` columns return aware datetimes in UTC, and,
        unless ``features.timezone_aware_datetimes``, binds an aware datetime as its UTC
        instant: a database that keeps no offset would keep the wall clock."""
        if self.features.timezone_aware_datetimes:
            return_aware_datetimes_as_utc(engine)
        else:
            native = type(engine.dialect.type_descriptor(types.DateTime()))
            utc = type(f"UTC{native.__name__}", (AwareAsUTC, native), {})
            store_aware_datetimes_as_utc(engine, utc)
