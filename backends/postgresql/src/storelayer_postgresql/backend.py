"""PostgreSQL through psycopg2, tuned for a long-running application: a pre-pinged pool
recycled before middleboxes drop idle connections, bounded connects, TCP keepalives, and
retries on serialization failures, deadlocks and lost connections. Reasons:
docs/backends/postgresql.md."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg2  # type: ignore[import-untyped]
from sqlalchemy import event, exc, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL

from storelayer import Backend, Features
from storelayer.backend import (
    AUTOCOMMIT_OPTION,
    TCP_USER_TIMEOUT_MS,
    BackupStrategy,
    Errors,
    Operations,
    Provisioning,
    ServerLimits,
    connect_timeout_seconds,
    enforce_read_only_units,
    on_conflict_upsert,
    queue_pool_options,
    server_connection,
)
from storelayer.backend.commit_markers import markers_of, register
from storelayer_postgresql import backup as backup_strategy
from storelayer_postgresql import copystream, fastpath, hosts, pooler
from storelayer_postgresql.client import PostgreSQLClient
from storelayer_postgresql.markers import PostgreSQLMarkers
from storelayer_postgresql.migration_lock import PostgreSQLMigrations
from storelayer_postgresql.reads import refuse_writes_without_transaction
from storelayer_postgresql.replication import PostgreSQLReplication

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine

    from storelayer import Settings

#: TCP keepalives: probe after 10 s of silence, every 5 s, give up after 3 misses, so a
#: dead peer is noticed in about 25 s instead of the kernel's two hours.
KEEPALIVES: Mapping[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
#: Seconds to wait for the server when creating or dropping a database.
PROVISION_CONNECT_TIMEOUT = 10
#: PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1).
MAX_IDENTIFIER_LENGTH = 63

#: SQLSTATEs after which running the whole unit of work again may succeed.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (NOWAIT, lock_timeout)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down)
        "53300",  # too_many_connections
    }
)
#: SQLSTATE of a write in a read-only transaction (a standby, default_transaction_read_only).
READ_ONLY_SQLSTATE = "25006"
#: SQLSTATE of a statement cancelled (statement_timeout, or pg_cancel_backend).
QUERY_CANCELED_SQLSTATE = "57014"
#: SQLSTATE class 08: connection exceptions.
CONNECTION_EXCEPTION_CLASS = "08"
#: SQLSTATEs of a connect the server refused for good (when the driver reports one).
REFUSED_SQLSTATES = frozenset({"28000", "28P01", "3D000"})

# libpq reports connect failures as text without a SQLSTATE; these are its words.
_REFUSED_FOR_GOOD = re.compile(
    r"password authentication failed|authentication failed for user|no pg_hba\.conf entry"
    r"|pg_hba\.conf rejects connection|no password supplied"
    r"|(role|database) \".*\" does not exist|is not permitted to log in"
    r"|permission denied for database",
    re.IGNORECASE,
)
_NETWORK_FAILURE = re.compile(
    r"connection refused|timeout expired|timed out|closed the connection"
    r"|could not (connect to server|receive data|send data)|no route to host"
    r"|network is unreachable|connection reset|ssl syscall error"
    r"|connection has been closed unexpectedly|the database system is (starting up"
    r"|shutting down|in recovery mode)|too many clients|terminating connection",
    re.IGNORECASE,
)


def driver_error(error: BaseException) -> BaseException:
    """The DBAPI exception behind a SQLAlchemy wrapper, or ``error`` itself."""
    orig = getattr(error, "orig", None)
    return orig if isinstance(orig, BaseException) else error


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE the driver attached to ``error`` (psycopg2 ``pgcode``, psycopg 3
    ``sqlstate``); None for client-side failures."""
    orig = driver_error(error)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def switch_autocommit_for_reads(engine: Engine) -> None:
    """``read_session(autocommit=True)``: turn the driver's ``autocommit`` on for the
    unit (client-side in psycopg2 and psycopg 3: no round trip), so a read is one
    ``SELECT`` instead of BEGIN, SELECT, COMMIT; off again when the unit ends."""

    def switch(conn: Connection, on: bool) -> None:
        if conn.get_execution_options().get(AUTOCOMMIT_OPTION):
            conn.connection.dbapi_connection.autocommit = on  # type: ignore[union-attr]

    event.listen(engine, "begin", lambda conn: switch(conn, True))
    event.listen(engine, "commit", lambda conn: switch(conn, False))
    event.listen(engine, "rollback", lambda conn: switch(conn, False))


def statement_timeout_ms(settings: Settings) -> int:
    """Milliseconds for the server; a positive timeout never rounds down to 0, which
    would mean "no limit"."""
    seconds = settings.statement_timeout or 0
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def connect_args(settings: Settings) -> dict[str, Any]:
    """libpq parameters from ``settings``."""
    wanted: dict[str, Any] = {
        "connect_timeout": connect_timeout_seconds(settings),
        "application_name": settings.application_name,
        **KEEPALIVES,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    }
    if settings.statement_timeout is not None:
        wanted["options"] = f"-c statement_timeout={statement_timeout_ms(settings)}"
    return wanted


class PostgreSQLErrors(Errors):
    """SQLSTATEs where the driver reports one, libpq's words where it does not."""

    def is_transient(self, exc_: BaseException) -> bool:
        if self.misconfiguration(exc_) is not None:
            return False
        if super().is_transient(exc_):
            return True
        code = sqlstate(exc_)
        if code is not None:
            return code in TRANSIENT_SQLSTATES or code.startswith(CONNECTION_EXCEPTION_CLASS)
        orig = driver_error(exc_)
        if not isinstance(orig, psycopg2.OperationalError):
            return False
        message = str(orig)
        return not _REFUSED_FOR_GOOD.search(message) and bool(_NETWORK_FAILURE.search(message))

    def is_connection_refused_for_good(self, exc_: BaseException) -> bool:
        if sqlstate(exc_) in REFUSED_SQLSTATES:
            return True
        orig = driver_error(exc_)
        return isinstance(orig, psycopg2.Error) and bool(_REFUSED_FOR_GOOD.search(str(orig)))

    def is_read_only(self, exc_: BaseException) -> bool:
        return sqlstate(exc_) == READ_ONLY_SQLSTATE

    def message(self, error: BaseException) -> str:
        # The primary message names the constraint or type; the DETAIL line holds the
        # failing row, and what follows ": " in the primary message the bad input.
        primary = getattr(getattr(driver_error(error), "diag", None), "message_primary", None)
        text = primary if isinstance(primary, str) else super().message(error)
        return text.partition(": ")[0]

    def is_statement_timeout(self, exc_: BaseException) -> bool:
        return sqlstate(exc_) == QUERY_CANCELED_SQLSTATE

    def misconfiguration(self, exc_: BaseException) -> str | None:
        return pooler.misconfiguration(str(driver_error(exc_)))

    def constraint_name(self, error: exc.IntegrityError) -> str | None:
        diag = getattr(error.orig, "diag", None)
        name = getattr(diag, "constraint_name", None)
        return name if isinstance(name, str) else None


class PostgreSQLOperations(Operations):
    """``INSERT ... ON CONFLICT``, ``COPY`` and paged ``VALUES`` (``fastpath``), sequences."""

    upsert = staticmethod(partial(on_conflict_upsert, insert))

    def bulk_insert(
        self, connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        # COPY: about 3x the rows per second of multi-row INSERT (docs/performance.md).
        if not fastpath.copy_insert(connection, table, rows):
            super().bulk_insert(connection, table, rows)

    def insert_columns(
        self, connection: Connection, table: Table, batches: Iterable[Sequence[Sequence[Any]]]
    ) -> None:
        # One COPY for the whole stream: the server stores rows while the next batch is read.
        def fallback(batch: Sequence[Sequence[Any]]) -> None:
            super(PostgreSQLOperations, self).insert_columns(connection, table, [batch])

        if not copystream.copy_columns(connection, table, batches, fallback):
            super().insert_columns(connection, table, batches)

    def loading(
        self, connection: Connection, tables: Sequence[Table]
    ) -> AbstractContextManager[None]:
        # Foreign keys checked row by row took two thirds of a COPY's server time, and
        # an index kept up row by row costs about twice one built after the rows.
        return copystream.constraints_after(connection, tables)

    def bulk_upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> None:
        # psycopg2's executemany sends one statement per row: page the rows instead.
        if not fastpath.values_upsert(connection, table, rows, conflict_columns, update_columns):
            super().bulk_upsert(connection, table, rows, conflict_columns, update_columns)

    def reset_sequences(self, connection: Connection, tables: Sequence[Table]) -> None:
        """Move every serial or identity sequence past the largest value of its column."""
        quote = connection.dialect.identifier_preparer
        serial = text("SELECT pg_get_serial_sequence(:t, :c)")
        for table in tables:
            name = quote.format_table(table)
            for column in table.columns:
                sequence = connection.execute(serial, {"t": name, "c": column.name}).scalar()
                if sequence is None:
                    continue
                largest = f"SELECT COALESCE(MAX({quote.quote(column.name)}), 0) FROM {name}"
                setval = text(f"SELECT setval(:s, ({largest}) + 1, false)")
                connection.execute(setval, {"s": sequence})

    def server_version(self, connection: Connection) -> str:
        # "15.20 (Debian 15.20-0+deb12u1)": keep the version, drop the packager's note.
        version = connection.execute(text("SELECT current_setting('server_version')")).scalar()
        return str(version).split(" ", 1)[0] if version else super().server_version(connection)

    def server_limits(self, dbapi_connection: Any) -> ServerLimits:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT current_setting('max_connections')")
            (max_connections,) = cursor.fetchone()
        finally:
            cursor.close()
            dbapi_connection.rollback()
        # PostgreSQL closes no idle connection unless idle_session_timeout is set.
        return ServerLimits(max_connections=int(max_connections))

    def commit_marker(self, connection: Connection) -> Any:
        markers = markers_of(connection)
        return None if markers is None else markers.mark(connection)

    def committed(self, connection: Connection, marker: Any) -> bool | None:
        return PostgreSQLMarkers().committed(connection, marker)  # the row alone tells


class PostgreSQLProvisioning(Provisioning):
    """``CREATE DATABASE`` and ``DROP DATABASE`` on the server."""

    def connect(self, url: URL, name: str) -> AbstractContextManager[tuple[Connection, str]]:
        url, timeout = PostgreSQLBackend().normalize_url(url), PROVISION_CONNECT_TIMEOUT
        return server_connection(url, name, MAX_IDENTIFIER_LENGTH, {"connect_timeout": timeout})

    def create_database(self, server_url: URL, name: str) -> URL:
        with self.connect(server_url, name) as (connection, quoted):
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        return server_url.set(database=name)

    def drop_database(self, server_url: URL, name: str) -> None:
        with self.connect(server_url, name) as (connection, quoted):
            # WITH (FORCE) (PostgreSQL 13+) ends the sessions still connected to it.
            force = (connection.dialect.server_version_info or (0,)) >= (13,)
            connection.exec_driver_sql(
                f"DROP DATABASE IF EXISTS {quoted}{' WITH (FORCE)' if force else ''}"
            )


class PostgreSQLBackend(Backend):
    """PostgreSQL 12 or later through psycopg2."""

    name = "postgresql"
    schemes = ("postgresql", "postgres")
    dialect = "postgresql"
    default_driver = "psycopg2"
    # psycopg 3: libpq like psycopg2, so the same connect_args (timeouts, keepalives,
    # application_name) serve both APIs; see docs/backends/postgresql.md.
    async_driver = "psycopg"
    default_test_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    install_hint = "storelayer-postgresql (pip install 'storelayer[postgresql]')"
    features = Features(
        returning=True,
        upsert=True,
        for_update=True,
        skip_locked=True,
        replicas=True,
        commit_outcome=True,  # a marker row written in the unit (markers.py)
        transactional_ddl=True,
        timezone_aware_datetimes=True,
        backup_format="pg_dump-custom",
    )
    errors = PostgreSQLErrors()
    ops = PostgreSQLOperations()
    replication = PostgreSQLReplication()
    backups: ClassVar[BackupStrategy] = backup_strategy
    provisioning = PostgreSQLProvisioning()
    migrations = PostgreSQLMigrations()
    client = PostgreSQLClient()

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        wanted = pooler.connect_args(settings, connect_args(settings))
        options = queue_pool_options(url, wanted, settings, pool_recycle=1800)
        per_transaction = pooler.execution_options(settings, statement_timeout_ms(settings))
        if per_transaction:
            options["execution_options"] = per_transaction
        return options

    def async_engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        options = super().async_engine_options(url, settings)
        options["connect_args"] = {
            **options["connect_args"],
            **pooler.async_connect_args(settings),
        }
        return options

    def autocommit_read_options(self) -> dict[str, Any]:
        return {AUTOCOMMIT_OPTION: True}

    def configure_engine(self, engine: Engine) -> None:
        super().configure_engine(engine)  # timestamptz values returned in UTC
        register(engine, PostgreSQLMarkers())
        # read_session() units: BEGIN READ ONLY (the driver's read-only flag, set on the
        # client: no round trip). Autocommit reads have no transaction: see reads.py.
        # Off is the driver's default (None), not an explicit READ WRITE: psycopg2 would
        # send that to the server when autocommit is switched on.
        dialect: Any = engine.dialect

        def read_only(dbapi_connection: Any, on: bool) -> None:
            dialect.set_readonly(dbapi_connection, True if on else None)

        enforce_read_only_units(engine, read_only, reset_at_checkin=True, unless=AUTOCOMMIT_OPTION)
        switch_autocommit_for_reads(engine)
        pooler.set_timeout_per_transaction(engine)
        hosts.reconnect_when_demoted(engine)
        refuse_writes_without_transaction(engine)  # autocommit reads: no transaction

    def start_test_replicas(self, count: int = 1) -> Any:
        """For tests: a private primary with ``count`` streaming standbys, as a context
        manager (``storelayer_postgresql.testing.PostgreSQLReplicaSet``)."""
        from storelayer_postgresql.testing import PostgreSQLReplicaSet

        return PostgreSQLReplicaSet(replicas=count)
