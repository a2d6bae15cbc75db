"""MySQL 8 and MariaDB 10.6+ through PyMySQL, tuned for a long-running application:
utf8mb4, a strict sql_mode, UTC sessions, a pre-pinged pool recycled well before the
server's wait_timeout, bounded connects and retries on deadlocks, lock wait timeouts and
lost connections. Reasons: docs/backends/mysql.md."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import event, exc, text
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.engine import URL

from storelayer import Backend, Features
from storelayer.backend import (
    BackupStrategy,
    Errors,
    Operations,
    Provisioning,
    ServerLimits,
    connect_timeout_seconds,
    enforce_read_only_units,
    queue_pool_options,
    server_connection,
)
from storelayer.backend.bulk import rows_by_text
from storelayer.backend.commit_markers import markers_of
from storelayer.datetimes import AwareAsUTC, store_aware_datetimes_as_utc
from storelayer_mysql import hosts, staging, types
from storelayer_mysql.client import MySQLClient
from storelayer_mysql.connection import (
    HANDSHAKE_TIMEOUTS,
    bounded_async_connect,
    connect_args,
    enable_keepalive_probes,
    lift_handshake_timeouts,
)
from storelayer_mysql.galera import is_wsrep_error
from storelayer_mysql.migration_lock import MySQLMigrations
from storelayer_mysql.replication import MySQLReplication
from storelayer_mysql.transactions import MySQLMarkers, isolation_options, track_units

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine, ExceptionContext
    from sqlalchemy.sql import Executable

    from storelayer import Settings

#: A write refused because the server runs read-only (1290 also covers other
#: --options, hence the check of the message) or the transaction is read-only (1792).
READ_ONLY_CODES = frozenset({1290, 1792})
#: A statement stopped by its time limit: MariaDB's max_statement_time (1969), MySQL's
#: max_execution_time (3024).
STATEMENT_TIMEOUT_CODES = frozenset({1969, 3024})
#: MySQL and MariaDB reject identifiers longer than this.
MAX_IDENTIFIER_LENGTH = 64
#: Seconds to wait for the server when creating or dropping a database.
PROVISION_CONNECT_TIMEOUT = 10

#: Error codes after which running the whole unit of work again may succeed.
TRANSIENT_CODES = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2003,  # CR_CONN_HOST_ERROR: refused, timed out, unreachable
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
    }
)
#: CHECK constraint violations (MySQL 3819, MariaDB 4025), which PyMySQL raises as
#: OperationalError although they are integrity errors like any other.
CHECK_VIOLATION_CODES = frozenset({3819, 4025})
#: A value the server refused, which PyMySQL raises as OperationalError: 1292 incorrect
#: datetime, uuid... value, 3140 invalid JSON text, 1301 larger than max_allowed_packet.
VALUE_REFUSED_CODES = frozenset({1292, 3140, 1301})
#: Error codes of a connect the server refused for good.
REFUSED_CODES = frozenset(
    {
        1044,  # ER_DBACCESS_DENIED_ERROR: no access to that database
        1045,  # ER_ACCESS_DENIED_ERROR: bad user or password
        1049,  # ER_BAD_DB_ERROR: unknown database
        1698,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    }
)
# "Duplicate entry 'x' for key 'users.uq_email'" (MySQL 8) or "... for key 'uq_email'".
_DUPLICATE_KEY = re.compile(r"for key '(?P<name>[^']+)'\s*$")
# Foreign keys (1451, 1452) and MariaDB checks (4025): "... CONSTRAINT `name` ...".
_NAMED_CONSTRAINT = re.compile(r"CONSTRAINT `(?P<name>[^`]+)`")
# MySQL 8 checks (3819): "Check constraint 'name' is violated."
_CHECK_CONSTRAINT = re.compile(r"Check constraint '(?P<name>[^']+)' is violated")
# The value MySQL quotes in a message, up to what follows it (" for key ...").
_QUOTED_VALUE = re.compile(
    r"(?P<head>(?:entry|value:|text:|value))\s+(?P<q>['\"]).*(?P=q)(?P<tail>\s+(?:for|at|in)\s.*)$",
    re.S,
)
#: The longest statement a bulk write sends: PyMySQL's own limit for ``executemany``.
MAX_STATEMENT_BYTES = 1_024_000

_VERSION = re.compile(r"^\d+(\.\d+)*")


def error_code(error: BaseException) -> int | None:
    """The server or client error number PyMySQL raised, unwrapping SQLAlchemy's error."""
    orig = getattr(error, "orig", None)
    args = getattr(orig if isinstance(orig, BaseException) else error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def as_integrity_error(context: ExceptionContext) -> exc.DBAPIError | None:
    """A CHECK violation re-raised as the ``IntegrityError`` it is (a unit of work
    reports it as a ``Conflict``), a value the server refused as a ``DataError`` (an
    ``InvalidValue``); None for every other error."""
    wrapped = context.sqlalchemy_exception
    original = context.original_exception
    if not isinstance(wrapped, exc.StatementError) or not isinstance(original, Exception):
        return None
    code = error_code(original)
    if code in CHECK_VIOLATION_CODES:
        kind: type[exc.DBAPIError] = exc.IntegrityError
    elif code in VALUE_REFUSED_CODES:
        kind = exc.DataError
    else:
        return None
    return kind(
        wrapped.statement,
        wrapped.params,
        original,
        hide_parameters=wrapped.hide_parameters,
        ismulti=wrapped.ismulti,
    )


def read_only_transactions(dbapi_connection: Any, on: bool) -> None:
    """Make the session's next transactions read-only (or read-write again)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET SESSION TRANSACTION {'READ ONLY' if on else 'READ WRITE'}")
    finally:
        cursor.close()


class UTCDateTime(AwareAsUTC, mysql.DATETIME):
    """MySQL's ``DATETIME`` (its fractional seconds kept), storing an aware value as its
    UTC instant and returning it aware, in UTC, from a ``timezone=True`` column."""


class MySQLErrors(Errors):
    """Error numbers, and the messages that tell read-only and constraint names."""

    def is_transient(self, exc_: BaseException) -> bool:
        if super().is_transient(exc_) or error_code(exc_) in TRANSIENT_CODES:
            return True
        return is_wsrep_error(error_code(exc_), str(getattr(exc_, "orig", None) or exc_))

    def is_connection_refused_for_good(self, exc_: BaseException) -> bool:
        if error_code(exc_) in REFUSED_CODES:
            return True
        # PyMySQL raises RuntimeError when the server's auth plugin needs the
        # 'cryptography' package; installing it, not retrying, fixes that.
        orig = getattr(exc_, "orig", None) or exc_
        return isinstance(orig, RuntimeError) and "cryptography" in str(orig)

    def is_read_only(self, exc_: BaseException) -> bool:
        if error_code(exc_) not in READ_ONLY_CODES:
            return False
        message = str(getattr(exc_, "orig", None) or exc_).lower()
        return "read-only" in message or "read only" in message or "read_only" in message

    def message(self, error: BaseException) -> str:
        # "Duplicate entry 'x' for key 'k'", "Incorrect integer value: 'x' for column
        # 'c'", "Invalid JSON text: "x" in value for column": the quoted value goes.
        text = super().message(error)
        args: tuple[Any, ...] = tuple(getattr(getattr(error, "orig", None) or error, "args", ()))
        if len(args) > 1 and isinstance(args[1], str):
            text = " ".join(args[1].split())
        return _QUOTED_VALUE.sub(r"\g<head>\g<tail>", text)

    def is_statement_timeout(self, exc_: BaseException) -> bool:
        return error_code(exc_) in STATEMENT_TIMEOUT_CODES

    def constraint_name(self, error: exc.IntegrityError) -> str | None:
        args = getattr(error.orig, "args", ())
        message = str(args[-1] if args else error.orig)
        duplicate = _DUPLICATE_KEY.search(message)
        if duplicate:
            return duplicate["name"].rsplit(".", 1)[-1]  # MySQL 8 prefixes the table
        named = _NAMED_CONSTRAINT.search(message) or _CHECK_CONSTRAINT.search(message)
        return named["name"] if named else None


class MySQLOperations(Operations):
    """``ON DUPLICATE KEY UPDATE``, the version string, ``wait_timeout``; isolation set
    per transaction and commit markers (``transactions``)."""

    multirow_values = True

    def split_rows(self, values: list[list[Any]]) -> list[int]:
        return rows_by_text(values, MAX_STATEMENT_BYTES)

    def isolation_options(self, level: str) -> dict[str, Any]:
        return isolation_options(level)

    def commit_marker(self, connection: Connection) -> Any:
        markers = markers_of(connection)
        return None if markers is None else markers.mark(connection)

    def committed(self, connection: Connection, marker: Any) -> bool | None:
        return MySQLMarkers().committed(connection, marker)  # the row alone tells

    def upsert(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        conflict_columns: Sequence[str],
        update_columns: Sequence[str],
    ) -> Executable:
        # ON DUPLICATE KEY UPDATE fires on a clash with ANY unique key of the table, not
        # only on conflict_columns: MySQL has no way to name the conflict target.
        stmt = insert(table).values(list(rows)) if rows else insert(table)
        if update_columns:
            return stmt.on_duplicate_key_update(
                {name: stmt.inserted[name] for name in update_columns}
            )
        # MySQL has no ON CONFLICT DO NOTHING, and INSERT IGNORE would also turn other
        # errors (NOT NULL, foreign keys, bad values) into warnings. Setting a key column
        # to its own value makes a duplicate a no-op and leaves every other error alone.
        key = next(iter(conflict_columns), None) or table.primary_key.columns[0].key
        return stmt.on_duplicate_key_update({key: table.c[key]})

    def server_version(self, connection: Connection) -> str:
        # "10.11.19-MariaDB-0+deb12u1" -> "10.11.19-MariaDB"; "8.0.36-0ubuntu" -> "8.0.36".
        version = str(connection.execute(text("SELECT VERSION()")).scalar() or "")
        number = _VERSION.match(version)
        if number is None:
            return version or super().server_version(connection)
        return number[0] + ("-MariaDB" if "mariadb" in version.lower() else "")

    def server_limits(self, dbapi_connection: Any) -> ServerLimits:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT @@max_connections, @@wait_timeout")
            max_connections, wait_timeout = cursor.fetchone()
        finally:
            cursor.close()
        return ServerLimits(max_connections=int(max_connections), idle_timeout=float(wait_timeout))


class MySQLProvisioning(Provisioning):
    """``CREATE DATABASE`` (utf8mb4) and ``DROP DATABASE`` on the server."""

    def connect(self, url: URL, name: str) -> AbstractContextManager[tuple[Connection, str]]:
        url, seconds = MySQLBackend().normalize_url(url), PROVISION_CONNECT_TIMEOUT
        timeouts = dict.fromkeys(("connect_timeout", *HANDSHAKE_TIMEOUTS), seconds)
        return server_connection(url, name, MAX_IDENTIFIER_LENGTH, timeouts)

    def create_database(self, server_url: URL, name: str) -> URL:
        with self.connect(server_url, name) as (connection, quoted):
            connection.exec_driver_sql(
                f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        return server_url.set(database=name)

    def drop_database(self, server_url: URL, name: str) -> None:
        with self.connect(server_url, name) as (connection, quoted):
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


class MySQLBackend(Backend):
    """MySQL 8 and MariaDB 10.6+ through PyMySQL; ``mariadb://`` URLs work as well."""

    name = "mysql"
    schemes = ("mysql", "mariadb")
    dialect = "mysql"
    default_driver = "pymysql"
    # aiomysql: PyMySQL's protocol code under asyncio, so the same connect_args apply
    # but for the read/write timeouts it lacks, and its parameter escaping is replaced;
    # see async_engine_options() and docs/async.md.
    async_driver = "aiomysql"
    default_test_url = "mysql://root@127.0.0.1:3306/test"
    install_hint = "storelayer-mysql (pip install 'storelayer[mysql]')"
    # Off as by default: returning (MariaDB has INSERT ... RETURNING only since 10.5,
    # MySQL none), transactional_ddl (every DDL statement commits implicitly) and
    # timezone_aware_datetimes (DATETIME drops the offset; sessions run in UTC).
    features = Features(
        upsert=True,
        for_update=True,
        skip_locked=True,  # MySQL 8.0, MariaDB 10.6
        replicas=True,
        commit_outcome=True,  # a marker row written in the unit (transactions.py)
        backup_format="mysqldump",
    )
    errors = MySQLErrors()
    ops = MySQLOperations()
    replication = MySQLReplication()
    backups: ClassVar[BackupStrategy] = staging
    provisioning = MySQLProvisioning()
    migrations = MySQLMigrations()
    client = MySQLClient()

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        # The server closes a connection idle for wait_timeout (default 28800 s, often
        # lowered by hosting providers); recycling after an hour stays well inside it.
        return queue_pool_options(url, connect_args(settings), settings, pool_recycle=3600)

    def async_engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """aiomysql bounds only the TCP connect by ``connect_timeout``, like PyMySQL, and
        has no read timeout: the whole connect, handshake included, is bounded instead."""
        options = super().async_engine_options(url, settings)
        args = {k: v for k, v in options["connect_args"].items() if k not in HANDSHAKE_TIMEOUTS}
        args["async_creator_fn"] = bounded_async_connect(connect_timeout_seconds(settings))
        options["connect_args"] = args
        return options

    def autocommit_read_options(self) -> dict[str, Any]:
        # Switching a pooled connection to autocommit and back costs two round trips
        # (SET AUTOCOMMIT, then the isolation reset); a read transaction costs one
        # (MySQL begins implicitly; only COMMIT is sent).
        return {}

    def configure_engine(self, engine: Engine) -> None:
        url_query = dict(engine.url.query)

        @event.listens_for(engine, "connect")
        def after_handshake(dbapi_connection: Any, _record: Any) -> None:
            lift_handshake_timeouts(dbapi_connection, url_query)
            enable_keepalive_probes(dbapi_connection)

        event.listen(engine, "handle_error", as_integrity_error)
        hosts.connect_to_a_writable_host(engine)
        track_units(engine)
        # DATETIME keeps no offset: typed columns bind an aware value as its UTC instant
        # on every driver, the ``conv`` encoder covers raw SQL.
        store_aware_datetimes_as_utc(engine, UTCDateTime)
        # DATETIME(6), DOUBLE, LONGTEXT, utf8mb4 tables: values come back as written.
        types.adapt_engine(engine)
        # read_session() units: the session's transactions are READ ONLY while a
        # connection serves reads (one statement each time it changes from writes).
        enforce_read_only_units(engine, read_only_transactions, reset_at_checkin=False)

    def start_test_replicas(self, count: int = 1) -> Any:
        """For tests: a private MariaDB primary with ``count`` GTID replicas, as a
        context manager (``storelayer_mysql.testing.MariaDBReplicaSet``)."""
        from storelayer_mysql.testing import MariaDBReplicaSet

        return MariaDBReplicaSet(replicas=count)
