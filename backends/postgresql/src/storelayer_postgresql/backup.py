"""PostgreSQL backups: ``pg_dump --format=custom`` and ``pg_restore``.

Commands are built by pure functions returning ``(args, env)``. Nothing taken from the
URL reaches ``args``: host, port, user, database and SSL settings travel as ``PG*``
environment variables (a value there is never parsed as an option or a conninfo string),
the password in a 0600 passfile that lives in memory only (an inherited descriptor the
tool reads as ``/dev/fd/N``). The one exception is pg_restore's target, which it only
takes as ``--dbname``: it is passed as a conninfo string with the name quoted, so it
cannot carry another setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from storelayer import BackupError
from storelayer.backup.children import secret_file
from storelayer.backup.options import BackupOptions
from storelayer.backup.tools import (
    Command,
    find_tool,
    output_lines,
    run,
    tool_version,
    write_private_text,
)
from storelayer.config import url_hosts

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from storelayer.backend import Progress

#: URL query parameters handed to libpq, and the environment variable of each.
LIBPQ_ENVIRONMENT: Mapping[str, str] = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
DEFAULT_SCHEMA = "public"
_VERSION = re.compile(r"\)\s+(?P<major>\d+)(?:\.(?P<minor>\d+))?")
_COPY = re.compile(r"^COPY (?P<name>.+?) (?:\(.*\) )?FROM stdin;$")
END_OF_COPY = b"\\.\n"


def install_hint(major: int | None) -> str:
    """What to install to get client tools for a server of version ``major``."""
    v = str(major) if major else "<server major version>"
    return (
        f"install the PostgreSQL {v} client tools (Debian/Ubuntu: apt install "
        f"postgresql-client-{v}; RHEL/Fedora: dnf install postgresql{v}; macOS: brew install "
        f"postgresql@{v}), or point STORELAYER_TOOLS_PATH at their bin directory"
    )


def passfile_text(password: str) -> str:
    """A ``.pgpass`` line matching any server, with ``:`` and ``\\`` escaped."""
    if "\n" in password or "\r" in password:
        raise BackupError("a password with a line break cannot go into a passfile")
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def libpq_environment(
    url: URL, environ: Mapping[str, str], passfile: Path | str | None
) -> dict[str, str]:
    """The tools' environment: the caller's without any ``PG*`` variable, then the
    URL's connection settings as ``PG*`` variables."""
    env = {k: v for k, v in environ.items() if not k.startswith("PG")}
    settings = {
        **host_variables(url),
        "PGUSER": url.username,
        "PGDATABASE": url.database,
    }
    for key, variable in LIBPQ_ENVIRONMENT.items():
        value = url.query.get(key)
        settings[variable] = value[-1] if isinstance(value, tuple) else value
    env.update({k: str(v) for k, v in settings.items() if v not in (None, "")})
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    return env


def host_variables(url: URL) -> dict[str, str | int | None]:
    """``PGHOST`` and ``PGPORT`` for every server the URL names, in order (libpq's
    comma-separated lists for a host list, with ``PGTARGETSESSIONATTRS`` from the URL
    choosing among them), so that the tools reach the server the engines reach."""
    hosts = url_hosts(url)
    if not hosts:
        return {"PGHOST": None, "PGPORT": url.port}
    ports = [str(port) if port is not None else "" for _, port in hosts]
    return {
        "PGHOST": ",".join(host for host, _ in hosts),
        "PGPORT": ",".join(ports) if any(ports) else None,
    }


def conninfo_dbname(database: str) -> str:
    """``dbname='...'`` with the name quoted as libpq requires."""
    return "dbname='" + database.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dump_command(pg_dump: Path, target: Path, env: dict[str, str]) -> Command:
    """pg_dump in custom format, uncompressed (storelayer compresses the artifact)."""
    args = [str(pg_dump), "--format=custom", "--compress=0", "--no-password", f"--file={target}"]
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


def read_command(pg_restore: Path, source: Path, env: dict[str, str]) -> Command:
    """pg_restore writing the whole archive as SQL to stdout: a full read."""
    return Command([str(pg_restore), "--file=-", str(source)], env)


def tool_major(version_line: str) -> int | None:
    """15 from ``pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)``."""
    found = _VERSION.search(version_line)
    return int(found["major"]) if found else None


def checked_tool(
    name: str, server_major: int | None, environ: Mapping[str, str]
) -> tuple[Path, str]:
    """The tool and its version, or a ``BackupError`` when it is missing or older than
    the server."""
    tool = find_tool([name], install_hint(server_major), environ)
    line = tool_version(tool)
    major = tool_major(line)
    if server_major and major and major < server_major:
        raise BackupError(
            f"{tool} is version {major}, older than the PostgreSQL {server_major} server: "
            + install_hint(server_major)
        )
    version = line.split(")", 1)[-1].strip().split(" ", 1)[0]
    return tool, f"{name} {version}"


def server_major(engine: Engine) -> int:
    """The server's major version (150020 -> 15)."""
    with engine.connect() as connection:
        number = connection.exec_driver_sql("SHOW server_version_num").scalar()
    return int(str(number)) // 10000


@contextmanager
def tool_environment(url: URL) -> Iterator[tuple[dict[str, str], tuple[int, ...]]]:
    """The tools' environment and the descriptors they inherit: the password is in a
    passfile that never rests on disk (:func:`secret_file`)."""
    if not url.password:
        yield libpq_environment(url, os.environ, None), ()
        return
    with secret_file("pgpass", passfile_text(str(url.password))) as passfile:
        yield libpq_environment(url, os.environ, passfile.path), passfile.keep_fds


def backup(
    engine: Engine,
    target: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> str:
    """pg_dump the database into ``target`` (created 0600 first)."""
    tool, version = checked_tool("pg_dump", server_major(engine), os.environ)
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


def restore(
    engine: Engine,
    source: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> None:
    """pg_restore the dump into the engine's database."""
    tool, _ = checked_tool("pg_restore", server_major(engine), os.environ)
    with tool_environment(engine.url) as (env, keep_fds):
        command = restore_command(
            tool, source, str(engine.url.database or ""), env, options or BackupOptions()
        )
        run(command, "pg_restore", secrets=[str(engine.url.password or "")], keep_fds=keep_fds)
    if progress is not None:
        progress(1, 1)


def split_identifier(qualified: str) -> list[str]:
    """Split a qualified name as pg_dump quotes it: ``public."Album"`` -> public, Album."""
    parts, rest = [], qualified
    while rest:
        if rest.startswith('"'):
            found = re.match(r'"((?:[^"]|"")*)"', rest)
            if found is None:
                raise BackupError(f"cannot parse the table name {qualified!r} in the dump")
            parts.append(found[1].replace('""', '"'))
            rest = rest[found.end() :]
        else:
            name, _, rest = rest.partition(".")
            parts.append(name)
            continue
        rest = rest.removeprefix(".")
    return parts


def table_key(qualified: str) -> str:
    """The manifest's key: the bare name in ``public``, else ``schema.name``."""
    parts = split_identifier(qualified)
    if len(parts) == 2 and parts[0] == DEFAULT_SCHEMA:
        return parts[1]
    return ".".join(parts)


def count_copy_rows(lines: Iterable[bytes]) -> dict[str, int]:
    """Rows of each ``COPY ... FROM stdin`` block of a SQL script (one row per line)."""
    counts: dict[str, int] = {}
    current: str | None = None
    for line in lines:
        if current is not None:
            if line == END_OF_COPY:
                current = None
            else:
                counts[current] += 1
        elif line.startswith(b"COPY "):
            found = _COPY.match(line.decode().rstrip("\n"))
            if found:
                current = table_key(found["name"])
                counts[current] = 0
    if current is not None:
        raise BackupError(f"the dump ends inside the data of table {current}")
    return counts


def inspect(source: Path) -> dict[str, int]:
    """Read the whole archive through pg_restore and count each table's rows."""
    tool, _ = checked_tool("pg_restore", None, os.environ)
    command = read_command(tool, source, without_libpq_settings(os.environ))
    return count_copy_rows(output_lines(command, "pg_restore (reading the dump)"))


def without_libpq_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without ``PG*`` variables (no connection is made)."""
    return {k: v for k, v in environ.items() if not k.startswith("PG")}
