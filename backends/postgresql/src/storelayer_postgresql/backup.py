"""PostgreSQL backups: ``pg_dump --format=custom``, restored through ``pg_restore``
and ``psql`` in a transaction storelayer commits (:mod:`storelayer_postgresql.restore`),
or by ``pg_restore --jobs`` when the restore need not be atomic.

Commands are built by pure functions returning ``(args, env)``; connection settings and
the password reach the tools as :mod:`storelayer_postgresql.client_tools` describes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storelayer.backup.leftovers import LEFTOVER_PATTERN, owner_gone
from storelayer.backup.options import BackupOptions
from storelayer.backup.tools import Command, output_lines, run, write_private_text
from storelayer_postgresql.client_tools import (
    checked_tool,
    count_copy_rows,
    server_major,
    without_libpq_settings,
)
from storelayer_postgresql.client_tools import conninfo_dbname as conninfo_dbname
from storelayer_postgresql.client_tools import host_variables as host_variables
from storelayer_postgresql.client_tools import install_hint as install_hint
from storelayer_postgresql.client_tools import libpq_environment as libpq_environment
from storelayer_postgresql.client_tools import passfile_text as passfile_text
from storelayer_postgresql.client_tools import tool_environment as tool_environment
from storelayer_postgresql.client_tools import tool_major as tool_major
from storelayer_postgresql.markers import SCHEMA as MARKERS_SCHEMA
from storelayer_postgresql.restore import restore_checked

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Progress


def dump_command(pg_dump: Path, target: Path, env: dict[str, str]) -> Command:
    """pg_dump in custom format, uncompressed (storelayer compresses the artifact),
    without an fsync (the target may be a pipe; storelayer fsyncs the artifact)."""
    args = [
        str(pg_dump),
        "--format=custom",
        "--compress=0",
        "--no-sync",
        "--no-password",
        f"--exclude-schema={MARKERS_SCHEMA}",  # the server's own bookkeeping (markers.py)
        f"--file={target}",
    ]
    return Command(args, env)


def restore_command(
    pg_restore: Path, source: Path, database: str, env: dict[str, str], options: BackupOptions
) -> Command:
    """pg_restore into ``database``: one transaction, or parallel jobs when the restore
    need not be atomic; ``--clean`` when it replaces existing objects."""
    args = [
        str(pg_restore),
        "--no-password",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--dbname={conninfo_dbname(database)}",
    ]
    if options.atomic or options.jobs <= 1:
        args.append("--single-transaction")
    else:
        args.append(f"--jobs={options.jobs}")
    if options.replace:
        args += ["--clean", "--if-exists"]
    return Command([*args, str(source)], env)


def read_command(pg_restore: Path, env: dict[str, str]) -> Command:
    """pg_restore reading the archive on stdin (a file or a pipe: read once, in order)
    and writing it whole as SQL to stdout: a full read."""
    return Command([str(pg_restore), "--file=-"], env)


def backup(
    engine: Engine,
    target: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> str:
    """pg_dump the database into ``target``: a pipe, or a file created 0600 first."""
    tool, version = checked_tool("pg_dump", server_major(engine), os.environ)
    if not target.is_fifo():
        write_private_text(target, "")
    with tool_environment(engine.url) as (env, keep_fds):
        run(
            dump_command(tool, target, env),
            "pg_dump",
            secrets=[str(engine.url.password or "")],
            keep_fds=keep_fds,
        )
    if progress is not None:
        progress(1, 1)
    return version


def restore_needs_file(options: BackupOptions) -> bool:
    """Whether the restore must read the dump from a file: pg_restore ``--jobs`` seeks
    in the archive and refuses standard input; the one-stream restore reads a pipe."""
    return not options.atomic and options.jobs > 1


def restore(
    engine: Engine,
    source: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> None:
    """Restore the dump into the engine's database: in one transaction committed after
    the rows were counted inside it, or with parallel pg_restore jobs when the restore
    need not be atomic (a scratch database)."""
    options = options or BackupOptions()
    major = server_major(engine)
    if options.atomic or options.jobs <= 1:
        restore_checked(engine, source, major, options)
        if progress is not None:
            progress(1, 1)
        return
    tool, _ = checked_tool("pg_restore", major, os.environ)
    with tool_environment(engine.url) as (env, keep_fds):
        command = restore_command(tool, source, str(engine.url.database or ""), env, options)
        run(command, "pg_restore", secrets=[str(engine.url.password or "")], keep_fds=keep_fds)
    if progress is not None:
        progress(1, 1)


def inspect(source: Path) -> dict[str, int]:
    """Read the whole archive (a file or a pipe) through pg_restore and count each
    table's rows."""
    tool, _ = checked_tool("pg_restore", None, os.environ)
    command = read_command(tool, without_libpq_settings(os.environ))
    return count_copy_rows(output_lines(command, "pg_restore (reading the dump)", stdin=source))


#: Leftover databases no session is connected to.
UNUSED_LEFTOVERS = text(
    "SELECT datname FROM pg_database d WHERE datname LIKE :pattern AND NOT EXISTS "
    "(SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"
)


def prune_stale(engine: Engine) -> list[str]:
    """Drop the storelayer scratch databases on the server whose owner process is gone
    (:func:`~storelayer.backup.leftovers.owner_gone`) and that no session uses; one
    this account may not drop is left alone."""
    dropped = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        names = connection.execute(UNUSED_LEFTOVERS, {"pattern": LEFTOVER_PATTERN}).scalars()
        for name in [str(n) for n in names if owner_gone(str(n))]:
            quoted = connection.dialect.identifier_preparer.quote_identifier(name)
            try:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
            except DBAPIError:
                continue
            dropped.append(name)
    return dropped
