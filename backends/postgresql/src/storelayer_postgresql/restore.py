"""PostgreSQL restores that storelayer commits itself, after its check.

pg_restore turns the archive into a SQL script; storelayer feeds the script to ``psql``
inside ``BEGIN``, counting the rows of every ``COPY`` block as they pass; once the
script ended, a dump fed through a pipe must have passed its checks (size, SHA-256,
rows: ``BackupOptions.checked_rows``) and the script must hold its rows. Then it sends a
``DO`` block that compares each table's rows with the dump's and raises on any
difference, and only then ``COMMIT``. The commit is storelayer's own last step: if
storelayer dies before it, psql is killed with it (or reads the end of its input) and
the server rolls the transaction back. A restore is never committed unchecked.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import IO, TYPE_CHECKING

from storelayer.backup.counts import count_differences
from storelayer.backup.options import BackupOptions
from storelayer.backup.tools import Command, feeding, output_lines
from storelayer.errors import BackupError
from storelayer_postgresql.client_tools import (
    CopyCounter,
    checked_tool,
    conninfo_dbname,
    tool_environment,
    without_libpq_settings,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def script_command(pg_restore: Path, env: dict[str, str], replace: bool) -> Command:
    """pg_restore reading the archive on stdin and writing the restore as SQL (owners
    and privileges left out; with ``replace``, objects dropped first)."""
    args = [str(pg_restore), "--file=-", "--no-owner", "--no-privileges"]
    if replace:
        args += ["--clean", "--if-exists"]
    return Command(args, env)


def psql_command(psql: Path, database: str, env: dict[str, str]) -> Command:
    """psql running what it reads on stdin into ``database``, stopping at the first
    error."""
    args = [
        str(psql),
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={conninfo_dbname(database)}",
    ]
    return Command(args, env)


def check_statement(counts: Mapping[str, int]) -> bytes:
    """A ``DO`` block raising an error when a table (named as the script names it)
    holds other than its ``counts`` rows."""
    tag = f"$storelayer_{secrets.token_hex(8)}$"
    lines = [f"DO {tag}", "DECLARE found bigint;", "BEGIN", "  NULL;"]
    for name, rows in counts.items():
        label = name.replace("'", "''")
        lines += [
            f"  SELECT count(*) INTO found FROM {name};",
            f"  IF found <> {int(rows)} THEN RAISE EXCEPTION 'storelayer: table % holds % "
            f"rows after the restore, the dump holds %; nothing was restored', '{label}', "
            f"found, {int(rows)}; END IF;",
        ]
    lines += ["END", f"{tag};", ""]
    return "\n".join(lines).encode()


def commit(sink: IO[bytes]) -> None:
    """Storelayer's last step: the restore's checks passed, commit it."""
    sink.write(b"COMMIT;\n")


def check_script(counted: dict[str, int], options: BackupOptions) -> None:
    """Before the commit: when the dump came through a pipe, wait for its end and its
    checks (size, SHA-256, rows), and the script pg_restore wrote from it must hold
    exactly its rows."""
    expected = options.dump_checked()
    if expected is None:
        return
    differences = count_differences(expected, counted)
    if differences:
        raise BackupError(
            "pg_restore's script does not hold the dump's rows, nothing was restored: "
            + "; ".join(differences)
        )


def restore_checked(engine: Engine, source: Path, major: int, options: BackupOptions) -> None:
    """Restore ``source`` in one transaction that commits only after its rows were
    counted inside it."""
    pg_restore, _ = checked_tool("pg_restore", major, os.environ)
    psql, _ = checked_tool("psql", major, os.environ)
    password = [str(engine.url.password or "")]
    database = str(engine.url.database or "")
    script = output_lines(
        script_command(pg_restore, without_libpq_settings(os.environ), options.replace),
        "pg_restore (reading the dump)",
        stdin=source,
    )
    with (
        closing(script),
        tool_environment(engine.url) as (env, keep_fds),
        feeding(
            psql_command(psql, database, env), "psql", secrets=password, keep_fds=keep_fds
        ) as sink,
    ):
        counter = CopyCounter()
        sink.write(b"BEGIN;\n")
        for line in script:
            counter.feed(line)
            sink.write(line)
        check_script(counter.finish(), options)
        sink.write(check_statement(counter.qualified))
        commit(sink)
