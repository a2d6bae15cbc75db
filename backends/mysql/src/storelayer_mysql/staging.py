"""MySQL/MariaDB restore through a staging database.

The dump is loaded into a new database on the same server; only when the client
succeeded are the tables swapped in with one ``RENAME TABLE`` statement, which is
atomic: readers see the old tables or the new ones. Triggers, views, routines and
events cannot move between databases with ``RENAME TABLE``; they are recreated in the
target right after the swap from the staging database's definitions.

With the dump's ``backup`` and ``inspect``, this module is ``MySQLBackend.backups``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storelayer import BackupError
from storelayer.backup.leftovers import LEFTOVER_PATTERN, owner_gone, server_scratch_name
from storelayer.backup.options import BackupOptions
from storelayer_mysql.backup import backup as backup
from storelayer_mysql.backup import inspect as inspect
from storelayer_mysql.backup import load
from storelayer_mysql.inplace import load_renamed, prune_tables, staged_tables, swap_in_place

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from storelayer.backend import Progress

#: (information_schema query of names, SHOW CREATE kind, column holding the statement).
OBJECT_KINDS = (
    (
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :db",
        "TRIGGER",
        "SQL Original Statement",
    ),
    (
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :db "
        "AND ROUTINE_TYPE = 'FUNCTION'",
        "FUNCTION",
        "Create Function",
    ),
    (
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :db "
        "AND ROUTINE_TYPE = 'PROCEDURE'",
        "PROCEDURE",
        "Create Procedure",
    ),
    (
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :db",
        "EVENT",
        "Create Event",
    ),
)
VIEWS = "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = :db"
TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db "
    "AND TABLE_TYPE = 'BASE TABLE'"
)
#: Name prefix of the staging databases of a restore.
STAGING_PREFIX = "storelayer_restore_"
LEFTOVERS = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE :db"
#: Whether no live restore holds a staging database: its lock is free and no session
#: (the client loading it) has it as its current database.
UNUSED = text(
    "SELECT IS_FREE_LOCK(:n) = 1 AND NOT EXISTS "
    "(SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = :n)"
)
#: Server errors for a missing privilege (database, table access denied).
ACCESS_DENIED = frozenset({1044, 1142})
#: One definition to recreate: (sql_mode or None, statement).
Definition = tuple[str | None, str]


def _names(connection: Connection, query: str, database: str) -> list[str]:
    return [str(n) for n in connection.execute(text(query), {"db": database}).scalars()]


def run_sql(connection: Connection, statement: str) -> dict[str, Any] | None:
    """Run one statement as is and return its first row, if any. Definitions read back
    from the server may hold ``%`` (``DEFINER=`app`@`%```, ``LIKE 'a%'``), which the
    driver's parameter formatting would misread: no parameters are involved at all."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
        if cursor.description is None:
            return None
        row = cursor.fetchone()
        names = [column[0] for column in cursor.description]
    finally:
        cursor.close()
    return dict(zip(names, row, strict=True)) if row is not None else None


def show_create(connection: Connection, kind: str, qualified: str) -> dict[str, Any]:
    """The row of ``SHOW CREATE <kind> <qualified>``."""
    row = run_sql(connection, f"SHOW CREATE {kind} {qualified}")
    if row is None:
        raise BackupError(f"SHOW CREATE {kind} {qualified} returned nothing")
    return row


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def objects_of(connection: Connection, database: str) -> list[Definition]:
    """Definitions of the triggers, routines and events of ``database``; each is dropped
    after it was read."""
    found: list[Definition] = []
    for query, kind, column in OBJECT_KINDS:
        for name in _names(connection, query, database):
            qualified = f"{_q(connection, database)}.{_q(connection, name)}"
            row = show_create(connection, kind, qualified)
            found.append((str(row["sql_mode"]), str(row[column])))
            run_sql(connection, f"DROP {kind} {qualified}")
    return found


def views_of(connection: Connection, database: str, rename_to: str) -> list[Definition]:
    """``CREATE VIEW`` statements of ``database``'s views, its name replaced by
    ``rename_to``; each view is dropped after it was read."""
    found: list[Definition] = []
    old, new = f"{_q(connection, database)}.", f"{_q(connection, rename_to)}."
    for name in _names(connection, VIEWS, database):
        qualified = f"{_q(connection, database)}.{_q(connection, name)}"
        row = show_create(connection, "VIEW", qualified)
        found.append((None, str(row["Create View"]).replace(old, new)))
        run_sql(connection, f"DROP VIEW {qualified}")
    return found


def recreate(connection: Connection, definitions: list[Definition]) -> None:
    """Run each definition under its own sql_mode; views that depend on views not yet
    created are retried until none is left."""
    mode = connection.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar()
    pending = list(definitions)
    try:
        while pending:
            failed: list[Definition] = []
            error: Exception | None = None
            for sql_mode, statement in pending:
                if sql_mode is not None:
                    connection.execute(text("SET SESSION sql_mode = :m"), {"m": sql_mode})
                try:
                    run_sql(connection, statement)
                except Exception as exc:  # a view whose view does not exist yet
                    failed.append((sql_mode, statement))
                    error = exc
            if len(failed) == len(pending):
                raise BackupError(f"cannot recreate {len(failed)} objects after the swap: {error}")
            pending = failed
    finally:
        connection.execute(text("SET SESSION sql_mode = :m"), {"m": mode})


def swap(connection: Connection, target: str, staging: str, trash: str, replace: bool) -> None:
    """Move the staging tables into ``target`` (its own tables into ``trash``) in one
    ``RENAME TABLE``, then recreate the other objects."""
    old = _names(connection, TABLES, target)
    if old and not replace:
        raise BackupError(f"database {target} is not empty; nothing was changed")
    definitions = views_of(connection, staging, target) + objects_of(connection, staging)
    if replace:
        views_of(connection, target, target)
        objects_of(connection, target)
    moves = [
        f"{_q(connection, target)}.{_q(connection, n)} TO {_q(connection, trash)}."
        f"{_q(connection, n)}"
        for n in old
    ]
    moves += [
        f"{_q(connection, staging)}.{_q(connection, n)} TO {_q(connection, target)}."
        f"{_q(connection, n)}"
        for n in _names(connection, TABLES, staging)
    ]
    if moves:
        run_sql(connection, "RENAME TABLE " + ", ".join(moves))
    recreate(connection, definitions)


def check_staged(connection: Connection, staging: str, expected: dict[str, int]) -> None:
    """The staging database holds the dump's rows, table by table: checked before the
    swap, so a restore is never switched in unchecked."""
    differences = []
    for name, rows in sorted(expected.items()):
        qualified = f"{_q(connection, staging)}.{_q(connection, name)}"
        found = run_sql(connection, f"SELECT COUNT(*) AS n FROM {qualified}")
        if found is None or int(found["n"]) != rows:
            differences.append(f"{name}: {found and found['n']} rows, the dump holds {rows}")
    if differences:
        raise BackupError(
            "the staged restore differs from the dump, nothing was changed: "
            + "; ".join(differences)
        )


def staging_name() -> str:
    """``storelayer_restore_<host>_<pid>_<unix time>_<random>``: whose, and since when."""
    return server_scratch_name("restore")


def _unused(connection: Connection, names: list[str]) -> list[str]:
    return [n for n in names if connection.execute(UNUSED, {"n": n}).scalar()]


def prune_staging(connection: Connection) -> list[str]:
    """Drop the staging databases no live restore holds (their owner's lock is free:
    the server releases it when the owner's connection ends, however it died) and the
    scratch databases of other kinds whose owner is gone; none that a session uses."""
    names = _names(connection, LEFTOVERS, LEFTOVER_PATTERN)
    staging = [n for n in names if n.startswith(STAGING_PREFIX)]
    others = [n for n in names if not n.startswith(STAGING_PREFIX) and owner_gone(n)]
    stale = _unused(connection, staging) + _unused(connection, others)
    for name in stale:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {_q(connection, name)}")
    return stale


def prune_stale(engine: Engine) -> list[str]:
    """:func:`prune_staging` on the engine's server, and the staging tables that dead
    restores left inside the engine's database (:func:`~storelayer_mysql.inplace.prune_tables`)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        dropped = prune_staging(connection)
        if engine.url.database:
            dropped += prune_tables(connection, engine.url.database)
        return dropped


class NoCreateDatabase(BackupError):
    """The account may not create the staging database (the restore then stages its
    tables inside the target database: :mod:`storelayer_mysql.inplace`)."""


def _create(connection: Connection, name: str, charset: str, collation: str) -> None:
    connection.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name})
    try:
        connection.exec_driver_sql(
            f"CREATE DATABASE {_q(connection, name)} CHARACTER SET {charset} COLLATE {collation}"
        )
    except DBAPIError as error:
        if getattr(error.orig, "args", (None,))[0] not in ACCESS_DENIED:
            raise
        raise NoCreateDatabase(name) from None


@contextmanager
def scratch_databases(connection: Connection, target: str, count: int) -> Iterator[list[str]]:
    """``count`` new databases with the target's character set, each locked by this
    connection while it lives and dropped afterwards; leftovers of killed restores are
    dropped first."""
    prune_staging(connection)
    charset, collation = connection.execute(
        text(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
            "information_schema.SCHEMATA WHERE SCHEMA_NAME = :db"
        ),
        {"db": target},
    ).one()
    names = [staging_name() for _ in range(count)]
    created: list[str] = []
    try:
        for name in names:
            _create(connection, name, charset, collation)
            created.append(name)
        yield names
    finally:
        for name in created:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {_q(connection, name)}")
        for name in names:
            connection.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})


def dump_rows(source: Path, options: BackupOptions) -> dict[str, int]:
    """The dump's rows per table: for a piped dump, once its end passed its checks."""
    expected = options.dump_checked()
    return inspect(source) if expected is None else expected


def restore_in_place(
    engine: Engine, connection: Connection, source: Path, target: str, options: BackupOptions
) -> None:
    """The atomic restore without a staging database: staged tables in the target."""
    with staged_tables(connection, target) as renamer:
        load_renamed(engine, source, target, renamer)
        expected = dump_rows(source, options)
        check_staged(connection, target, {renamer.name(n): r for n, r in expected.items()})
        swap_in_place(connection, target, renamer, options.replace)


def restore(
    engine: Engine,
    source: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
    loader: Callable[[Engine, Path, str], None] = load,
) -> None:
    """Restore the dump: into a staging database then swapped in (atomic); into staging
    tables inside the target, then swapped in, when the account may not create a
    database; or straight into the target when ``options.atomic`` is false."""
    options = options or BackupOptions()
    target = str(engine.url.database or "")
    if not options.atomic:
        loader(engine, source, target)
        return
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        ExitStack() as stack,
    ):
        try:
            staging, trash = stack.enter_context(scratch_databases(connection, target, 2))
        except NoCreateDatabase:
            restore_in_place(engine, connection, source, target, options)
        else:
            loader(engine, source, staging)
            check_staged(connection, staging, dump_rows(source, options))
            swap(connection, target, staging, trash, options.replace)
    if progress is not None:
        progress(1, 1)
