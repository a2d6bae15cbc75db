"""``storelayer dbshell`` on every backend: SQL on stdin reaches the configured database
through the database's own client, as a password-protected account, and the password
is never on the client's command line, in its environment or in any output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import URL, Connection

from storelayer.backend import Backend
from storelayer.testing import Provisioner, provision_or_skip, skip_or_fail

PASSWORD = f"dbshell-{uuid.uuid4().hex[:12]}"
SQL = (
    "CREATE TABLE shell_probe (n INTEGER);\n"
    "INSERT INTO shell_probe VALUES (40), (2);\n"
    "SELECT SUM(n) AS total FROM shell_probe;\n"
)
#: Seconds to wait for the client to start; a slow machine is no failure.
START_TIMEOUT = 120


class Account(NamedTuple):
    """A database and the URL of an account on it (with its password, if any)."""

    url: URL
    password: str | None


def autocommit(url: URL) -> Iterator[Connection]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def sqlite_account(provisioner: Provisioner, backend: Backend) -> Iterator[Account]:
    yield Account(provision_or_skip(provisioner, backend), None)


def mysql_account(provisioner: Provisioner, backend: Backend) -> Iterator[Account]:
    """A user with a password on the shared server, allowed into a scratch database;
    dropped afterwards."""
    database = provision_or_skip(provisioner, backend)
    user = f"sl_shell_{uuid.uuid4().hex[:8]}"
    for connection in autocommit(database):
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": PASSWORD})
        connection.execute(text(f"GRANT ALL ON `{database.database}`.* TO '{user}'@'%'"))
    try:
        yield Account(database.set(username=user, password=PASSWORD), PASSWORD)
    finally:
        for connection in autocommit(database):
            connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))


def postgresql_account(provisioner: Provisioner, backend: Backend) -> Iterator[Account]:
    """A role with a password owning a database, on a private server that checks
    passwords (the shared one trusts local connections); the server goes afterwards."""
    from storelayer_postgresql.testing import PostgreSQLServer, find_bindir, make_workdir

    if find_bindir() is None:
        skip_or_fail("PostgreSQL server binaries not found; set PG_BINDIR")
    user = f"sl_shell_{uuid.uuid4().hex[:8]}"
    with PostgreSQLServer(make_workdir(), password=f"admin-{PASSWORD}") as server:
        for connection in autocommit(server.url):
            connection.execute(text(f"CREATE ROLE {user} LOGIN PASSWORD '{PASSWORD}'"))
            connection.execute(text(f"CREATE DATABASE {user} OWNER {user}"))
        url = server.url.set(username=user, password=PASSWORD, database=user)
        yield Account(url, PASSWORD)


ACCOUNTS: dict[str, Callable[[Provisioner, Backend], Iterator[Account]]] = {
    "sqlite": sqlite_account,
    "mysql": mysql_account,
    "postgresql": postgresql_account,
}


@pytest.fixture
def account(backend: Backend, storelayer_provisioner: Provisioner) -> Iterator[Account]:
    yield from ACCOUNTS[backend.name](storelayer_provisioner, backend)


def storelayer(*args: str, url: URL, **environ: str) -> subprocess.Popen[str]:
    """``storelayer ARGS`` with the URL in ``DATABASE_URL``, pipes on every stream."""
    env = {k: v for k, v in os.environ.items() if k != "STORELAYER_BACKEND"}
    env.update(environ, DATABASE_URL=url.render_as_string(hide_password=False))
    return subprocess.Popen(
        [sys.executable, "-m", "storelayer", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def client_process(pid: int) -> tuple[str, str, list[str]]:
    """Once storelayer has become the client: its command line, its environment and
    where its descriptors lead (read from /proc)."""
    python = os.path.realpath(sys.executable)
    proc = Path(f"/proc/{pid}")
    deadline = time.monotonic() + START_TIMEOUT
    while os.path.realpath(proc / "exe") == python:
        assert time.monotonic() < deadline, "storelayer did not start the client"
        time.sleep(0.02)
    cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
    environ = (proc / "environ").read_bytes().decode(errors="replace")
    fds = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
    return cmdline, environ, fds


def test_dbshell_runs_sql_from_stdin_and_never_shows_the_password(account: Account) -> None:
    process = storelayer("dbshell", url=account.url)
    try:
        cmdline, environ, fds = client_process(process.pid)
        out, err = process.communicate(SQL, timeout=START_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "42" in out.split()
    if account.password is not None:
        for seen in (cmdline, environ, out, err):
            assert account.password not in seen
        # the credentials are in a file that never had a name on disk
        assert any(target.startswith("/memfd:") for target in fds), fds
    for connection in autocommit(account.url):
        assert "shell_probe" in inspect(connection).get_table_names()


def test_dbshell_passes_parameters_to_the_client(
    backend: Backend, storelayer_provisioner: Provisioner
) -> None:
    """``storelayer dbshell -- ...``: the arguments go to the client as they are."""
    flags = {"sqlite": ["-csv"], "postgresql": ["--csv"], "mysql": ["--vertical"]}
    url = provision_or_skip(storelayer_provisioner, backend)
    process = storelayer("dbshell", "--", *flags[backend.name], url=url)
    out, err = process.communicate("SELECT 6 * 7 AS answer, 1 AS one;\n", timeout=START_TIMEOUT)
    assert process.returncode == 0, err
    expected = {"sqlite": "42,1", "postgresql": "42,1", "mysql": "answer: 42"}[backend.name]
    assert expected in out


def test_a_missing_client_is_one_line_naming_what_to_install(
    backend: Backend, tmp_path: Path
) -> None:
    url = URL.create(f"{backend.dialect}", username="u", password=PASSWORD, host="127.0.0.1",
                     port=1, database="absent") if backend.features.server else URL.create(
        f"{backend.dialect}", database=str(tmp_path / "shell.db"))
    process = storelayer("dbshell", url=url, STORELAYER_TOOLS_PATH=str(tmp_path))
    out, err = process.communicate("SELECT 6 * 7;\n", timeout=START_TIMEOUT)
    assert PASSWORD not in out + err
    if not backend.features.server and sys.version_info >= (3, 12):
        # SQLite falls back to the standard library's shell, python -m sqlite3
        assert process.returncode == 0, err
        assert "42" in out
        return
    assert process.returncode == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("storelayer: error: ")
    assert "not found on STORELAYER_TOOLS_PATH" in err
    assert "install" in err


def test_without_the_sqlite3_shell_python_312_uses_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ``sqlite3`` is missing: ``python -m sqlite3`` from Python 3.12 on (it reads
    SQL from stdin too), before that an error naming both fixes."""
    from storelayer import BackupError
    from storelayer_sqlite.client import shell_program

    monkeypatch.setenv("STORELAYER_TOOLS_PATH", str(tmp_path))
    assert shell_program((3, 12)) == [sys.executable, "-m", "sqlite3"]
    with pytest.raises(BackupError, match=r"apt install sqlite3.*Python 3\.12\+"):
        shell_program((3, 11))
