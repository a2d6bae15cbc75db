"""MySQL/MariaDB atomic restore for an account without ``CREATE DATABASE``: staging
tables inside the target database.

The dump streams through storelayer into the client with every table renamed
``slr<key>_<name>`` (and each foreign key constraint with it: constraint names are
unique per database). Once the client succeeded and the staged rows match the dump's,
one ``RENAME TABLE`` moves the target's tables to ``slt<key>_<name>`` and the staged
ones to their names: readers see the old tables or the new ones. The old tables are
dropped after. Foreign keys named by their table (``<table>_ibfk_N``) follow the rename;
other names are restored right after the swap. A dump holding views, triggers, routines
or events is refused: their bodies name tables in ways that cannot be renamed safely.

The restoring connection holds the lock ``storelayer_inplace_<key>`` while it lives; a
later restore drops the ``slr``/``slt`` tables whose lock is free (their restore died).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from storelayer import BackupError
from storelayer.backup.children import secret_file
from storelayer.backup.tools import feeding
from storelayer_mysql.backup import CLIENT_TOOLS, checked_tool, client_command, option_file_text
from storelayer_mysql.hosts import served_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Longest MySQL identifier.
MAX_NAME = 64
_NAME = rb"`((?:[^`]|``)+)`"
_TABLE_LINE = re.compile(
    rb"^(DROP TABLE IF EXISTS |CREATE TABLE |LOCK TABLES |/\*!40000 ALTER TABLE |INSERT INTO )"
    + _NAME
)
_CONSTRAINT = re.compile(rb"^(\s*CONSTRAINT )" + _NAME + rb"( FOREIGN KEY .*REFERENCES )" + _NAME)
#: How a dump starts a view, trigger, routine or event definition (or a view's
#: placeholder table, which versioned comments wrap).
_OTHER_OBJECTS = re.compile(rb"^(/\*!\d{5} CREATE\b|CREATE\b(?! TABLE ))")
_LEFTOVER = re.compile(r"^sl[rt](?P<key>[0-9a-f]{8})_")
TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db "
    "AND TABLE_TYPE = 'BASE TABLE'"
)
REFUSED = (
    "the dump holds views, triggers, routines or events, which cannot be staged inside "
    "the target database: grant the account CREATE and DROP on storelayer\\_%.* (a "
    "staging database), or restore with --jobs 2 (jobs=2, not atomic); nothing was changed"
)


def _quote(name: str) -> bytes:
    return b"`" + name.replace("`", "``").encode() + b"`"


def _unquote(name: bytes) -> str:
    return name.decode().replace("``", "`")


@dataclass
class Renamer:
    """Renames the tables and foreign keys of a dump, line by line."""

    key: str = field(default_factory=lambda: secrets.token_hex(4))
    tables: list[str] = field(default_factory=list)
    # (table, constraint name while staged, the constraint's definition as dumped)
    renamed_keys: list[tuple[str, str, str]] = field(default_factory=list)
    _table: str = ""

    @property
    def staged(self) -> str:
        return f"slr{self.key}_"

    @property
    def trash(self) -> str:
        return f"slt{self.key}_"

    def name(self, table: str) -> str:
        """``table`` as staged; one too long to take the prefix is refused."""
        if len(self.staged + table) > MAX_NAME:
            raise BackupError(
                f"table {table} has too long a name to be staged inside the target database: "
                "grant CREATE and DROP on storelayer\\_%.*, or restore with --jobs 2"
            )
        return self.staged + table

    def line(self, line: bytes) -> bytes:
        """One line of the dump, its table and constraint names renamed."""
        if _OTHER_OBJECTS.match(line):
            raise BackupError(REFUSED)
        found = _TABLE_LINE.match(line)
        if found:
            table = _unquote(found[2])
            if found[1] == b"CREATE TABLE ":
                self.tables.append(table)
                self._table = table
            return found[1] + _quote(self.name(table)) + line[found.end() :]
        found = _CONSTRAINT.match(line)
        if found:
            return self._constraint(found, line)
        return line

    def _constraint(self, found: re.Match[bytes], line: bytes) -> bytes:
        constraint, referenced = _unquote(found[2]), _unquote(found[4])
        staged = self.name(constraint)
        if not constraint.startswith(f"{self._table}_ibfk_"):  # InnoDB renames those
            definition = line.strip().rstrip(b",").decode()
            self.renamed_keys.append((self._table, staged, definition))
        renamed = found[1] + _quote(staged) + found[3] + _quote(self.name(referenced))
        return renamed + line[found.end() :]


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def _tables(connection: Connection, database: str) -> list[str]:
    return [str(n) for n in connection.execute(text(TABLES), {"db": database}).scalars()]


def _drop(connection: Connection, database: str, names: list[str]) -> None:
    if not names:
        return
    qualified = ", ".join(f"{_q(connection, database)}.{_q(connection, n)}" for n in names)
    connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified}")
    finally:
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")


def _lock(key: str) -> str:
    return f"storelayer_inplace_{key}"


def prune_tables(connection: Connection, database: str) -> list[str]:
    """Drop the staged and old tables that a dead restore left in ``database``."""
    stale = []
    for name in _tables(connection, database):
        found = _LEFTOVER.match(name)
        free = text("SELECT IS_FREE_LOCK(:n)")
        if found and connection.execute(free, {"n": _lock(found["key"])}).scalar() == 1:
            stale.append(name)
    _drop(connection, database, stale)
    return stale


@contextmanager
def staged_tables(connection: Connection, database: str) -> Iterator[Renamer]:
    """A :class:`Renamer` whose tables are dropped afterwards, locked meanwhile."""
    prune_tables(connection, database)
    renamer = Renamer()
    connection.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": _lock(renamer.key)})
    try:
        yield renamer
    finally:
        ours = (renamer.staged, renamer.trash)
        left = [n for n in _tables(connection, database) if n.startswith(ours)]
        _drop(connection, database, left)
        connection.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _lock(renamer.key)})


def load_renamed(engine: Engine, source: Path, database: str, renamer: Renamer) -> None:
    """Feed the dump, renamed, to the client, into ``database``."""
    tool = checked_tool(CLIENT_TOOLS, engine)
    url = served_url(engine)
    with (
        secret_file("client.cnf", option_file_text(url, database)) as option_file,
        open(source, "rb") as dump,
        feeding(
            client_command(tool, option_file.path, os.environ),
            tool.path.name,
            secrets=[str(url.password or "")],
            keep_fds=option_file.keep_fds,
        ) as sink,
    ):
        for line in dump:
            sink.write(renamer.line(line))


def swap_in_place(connection: Connection, database: str, renamer: Renamer, replace: bool) -> None:
    """One ``RENAME TABLE``: the target's tables aside, the staged ones in; then the old
    ones dropped and the foreign keys that did not follow renamed back."""
    staged = set(renamer.tables)
    old = [n for n in _tables(connection, database) if not _LEFTOVER.match(n)]
    if old and not replace:
        raise BackupError(f"database {database} is not empty; nothing was changed")
    db = _q(connection, database)
    moves = [f"{db}.{_q(connection, n)} TO {db}.{_q(connection, renamer.trash + n)}" for n in old]
    moves += [
        f"{db}.{_q(connection, renamer.staged + n)} TO {db}.{_q(connection, n)}" for n in staged
    ]
    connection.exec_driver_sql("RENAME TABLE " + ", ".join(moves))
    _drop(connection, database, [renamer.trash + n for n in old])
    connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        for table, staged_name, definition in renamer.renamed_keys:
            connection.exec_driver_sql(
                f"ALTER TABLE {db}.{_q(connection, table)} DROP FOREIGN KEY "
                f"{_q(connection, staged_name)}, ADD {definition}"
            )
    finally:
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")
