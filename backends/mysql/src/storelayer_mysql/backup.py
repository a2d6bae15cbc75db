"""MySQL and MariaDB backups: ``mysqldump``/``mariadb-dump`` with
``--single-transaction``, restored through the ``mysql``/``mariadb`` client.

Commands are built by pure functions returning ``(args, env)``. Credentials, host, port
and socket go into a 0600 option file held in memory only (``/dev/fd/N``), passed
as ``--defaults-extra-file`` (the first option, as the tools require); the database
name follows ``--``, so no value from the URL can be read as an option.
``--single-transaction`` is a consistent snapshot only for InnoDB: a database with any
other engine's table is refused, or dumped under ``--lock-tables`` when the caller
allows blocking writers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from storelayer import BackupError
from storelayer.backup.children import secret_file
from storelayer.backup.options import BackupOptions
from storelayer.backup.tools import Command, find_tool, run, tool_version
from storelayer_mysql.hosts import served_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from storelayer.backend import Progress

#: URL query parameters written to the option file, with the option name of each.
QUERY_OPTIONS: Mapping[str, str] = {
    "unix_socket": "socket",
    "ssl_ca": "ssl-ca",
    "ssl_cert": "ssl-cert",
    "ssl_key": "ssl-key",
}
#: The only engine whose tables --single-transaction dumps consistently.
TRANSACTIONAL_ENGINES = frozenset({"INNODB"})
DUMP_TRAILER = b"-- Dump completed"
HINTS = {
    "mariadb": "install the MariaDB client (Debian/Ubuntu: apt install mariadb-client; "
    "RHEL/Fedora: dnf install mariadb; macOS: brew install mariadb)",
    "mysql": "install the MySQL client tools (Debian/Ubuntu: apt install mysql-client; "
    "RHEL/Fedora: dnf install mysql; macOS: brew install mysql-client)",
}
DUMP_TOOLS = {"mariadb": ("mariadb-dump", "mysqldump"), "mysql": ("mysqldump",)}
CLIENT_TOOLS = {"mariadb": ("mariadb", "mysql"), "mysql": ("mysql",)}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NUMBER = re.compile(r"(\d+)\.(\d+)")
_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES")
_CREATE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
_STRING = re.compile(rb"'(?:[^'\\]|\\.)*'", re.DOTALL)


@dataclass(frozen=True)
class ToolInfo:
    """A client tool and what it is."""

    path: Path
    flavor: str  # "mariadb" or "mysql"
    version: tuple[int, int]

    @property
    def label(self) -> str:
        """``mariadb-dump 10.11`` for the manifest."""
        return f"{self.path.name} {self.version[0]}.{self.version[1]} ({self.flavor})"


def option_value(value: str) -> str:
    """A value quoted for an option file: no comment, newline or quote can escape it."""
    if "\0" in value:
        raise BackupError("a connection setting contains a NUL character")
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def option_file_text(url: URL, database: str | None = None) -> str:
    """The ``[client]`` group (user, password, host, port, socket, TLS), and a ``[mysql]``
    group naming the client's default ``database``."""
    values: dict[str, object] = {
        "user": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
    }
    for key, option in QUERY_OPTIONS.items():
        raw = url.query.get(key)
        values[option] = raw[-1] if isinstance(raw, tuple) else raw
    lines = ["[client]"]
    lines += [f"{k}={option_value(str(v))}" for k, v in values.items() if v not in (None, "")]
    if database is not None:
        lines += ["[mysql]", f"database={option_value(database)}"]
    return "\n".join(lines) + "\n"


def dump_command(
    tool: ToolInfo,
    option_file: Path | str,
    database: str,
    lock_tables: bool,
    environ: Mapping[str, str],
) -> Command:
    """The dump of one database, without ``CREATE DATABASE``/``USE`` (it restores under
    any name)."""
    args = [
        str(tool.path),
        f"--defaults-extra-file={option_file}",
        "--lock-tables" if lock_tables else "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
    ]
    if tool.flavor == "mysql":
        args.append("--set-gtid-purged=OFF")
    return Command([*args, "--", database], dict(environ))


def client_command(tool: ToolInfo, option_file: Path | str, environ: Mapping[str, str]) -> Command:
    """The client reading a dump on stdin into the option file's database."""
    args = [
        str(tool.path),
        f"--defaults-extra-file={option_file}",
        "--batch",
        "--binary-mode",
        "--default-character-set=utf8mb4",
    ]
    return Command(args, dict(environ))


def flavor_of(version: str) -> str:
    """``mariadb`` or ``mysql`` from a server's or tool's version text."""
    return "mariadb" if "mariadb" in version.lower() else "mysql"


def version_of(text_: str) -> tuple[int, int]:
    """(major, minor): MariaDB's ``Distrib 10.11.19``, else the first number."""
    distrib = text_.split("Distrib", 1)
    found = _NUMBER.search(distrib[-1])
    return (int(found[1]), int(found[2])) if found else (0, 0)


def server_identity(engine: Engine) -> tuple[str, tuple[int, int]]:
    """The server's flavor and version."""
    with engine.connect() as connection:
        version = str(connection.execute(text("SELECT VERSION()")).scalar() or "")
    return flavor_of(version), version_of(version)


def checked_tool(kind: Mapping[str, tuple[str, ...]], engine: Engine) -> ToolInfo:
    """The dump or client tool matching the server, or a ``BackupError`` saying what to
    install."""
    flavor, server = server_identity(engine)
    path = find_tool(kind[flavor], HINTS[flavor])
    line = tool_version(path)
    tool = ToolInfo(path, flavor_of(line), version_of(line))
    if tool.flavor != flavor or tool.version < server:
        raise BackupError(
            f"{path} is {tool.flavor} {tool.version[0]}.{tool.version[1]}, which does not "
            f"fit the {flavor} {server[0]}.{server[1]} server: {HINTS[flavor]}"
        )
    return tool


def non_transactional_tables(engine: Engine) -> list[str]:
    """``table (ENGINE)`` for each base table not in a transactional engine."""
    query = text(
        "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        f"{name} ({kind})"
        for name, kind in rows
        if str(kind or "").upper() not in TRANSACTIONAL_ENGINES
    ]


def must_lock(engine: Engine, options: BackupOptions) -> bool:
    """Whether to dump under ``--lock-tables``; refuses when that is needed and not
    allowed."""
    others = non_transactional_tables(engine)
    if others and not options.lock_writes:
        raise BackupError(
            f"tables {', '.join(others)} are not InnoDB: --single-transaction cannot dump "
            "them consistently. Convert them (ALTER TABLE ... ENGINE=InnoDB), or allow "
            "locking writers out during the dump (--lock-writes, lock_writes=True)"
        )
    return bool(others)


def backup(
    engine: Engine,
    target: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> str:
    """Dump the database into the new 0600 file ``target``."""
    lock = must_lock(engine, options or BackupOptions())
    tool = checked_tool(DUMP_TOOLS, engine)
    url = served_url(engine)
    with secret_file("client.cnf", option_file_text(url)) as option_file:
        command = dump_command(tool, option_file.path, str(url.database or ""), lock, os.environ)
        run(
            command,
            tool.path.name,
            stdout=target,
            secrets=[str(url.password or "")],
            keep_fds=option_file.keep_fds,
        )
    if progress is not None:
        progress(1, 1)
    return tool.label


def load(engine: Engine, source: Path, database: str) -> None:
    """Feed the dump to the client, into ``database`` on the engine's server."""
    tool = checked_tool(CLIENT_TOOLS, engine)
    url = served_url(engine)
    with secret_file("client.cnf", option_file_text(url, database)) as option_file:
        run(
            client_command(tool, option_file.path, os.environ),
            tool.path.name,
            stdin=source,
            secrets=[str(url.password or "")],
            keep_fds=option_file.keep_fds,
        )


def _unquote(name: bytes) -> str:
    return name.decode().replace("``", "`")


def _tuples(values: bytes) -> tuple[int, bool]:
    """Rows started in one line of VALUES, and whether the statement ends there. Dumps
    escape line breaks inside strings, so strings never span lines; once they are
    removed, every ``(`` opens a row."""
    stripped = _STRING.sub(b"", values)
    return stripped.count(b"("), stripped.rstrip().endswith(b";")


def count_rows(lines: Iterable[bytes]) -> dict[str, int]:
    """Rows per table of a dump's INSERT statements (one line per statement, or one per
    row as MariaDB 10.11+ writes them); a dump without its closing line is refused as
    truncated."""
    counts: dict[str, int] = {}
    current: str | None = None
    last = b""
    for line in lines:
        if current is not None:
            rows, ended = _tuples(line)
            counts[current] += rows
            current = None if ended else current
        elif line.startswith(b"INSERT INTO "):
            found = _INSERT.match(line)
            if found:
                name = _unquote(found[1])
                rows, ended = _tuples(line[found.end() :])
                counts[name] = counts.get(name, 0) + rows
                current = None if ended else name
        elif line.startswith(b"CREATE TABLE "):
            created = _CREATE.match(line)
            if created:
                counts.setdefault(_unquote(created[1]), 0)
        if line.strip():
            last = line
    if current is not None or not last.startswith(DUMP_TRAILER):
        raise BackupError("the MySQL dump is truncated: it lacks its '-- Dump completed' line")
    return counts


def inspect(source: Path) -> dict[str, int]:
    """Read the whole dump and count each table's rows."""
    with open(source, "rb") as dump:
        return count_rows(dump)
