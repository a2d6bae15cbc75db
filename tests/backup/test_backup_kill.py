"""``storelayer backup`` and ``restore`` killed (SIGTERM, SIGKILL) at several points, as
real processes against password-protected accounts on the servers (and on SQLite):
afterwards no process storelayer started runs, no file under the temporary or backup
directory holds the password, an encrypted backup or its restore left no clear dump
(looked for while paused at the point too), a restore target is unchanged or fully
restored and checked, and the next run leaves no staging database. The points and the
harness: ``_backup_kills``."""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

import pyrage  # type: ignore[import-untyped, unused-ignore]
import pytest
from _backup_kills import Harness, files_holding, kill_signal
from sample_tables import checksums, fill_sample, plant_marker
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer import Database

pytestmark = [
    pytest.mark.requires("backup_format"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model"),
]

NewDatabase = Callable[[], Database]
T = TypeVar("T")
#: Names of the staging tables of a restore inside the target database.
STAGED_TABLE = re.compile(r"^sl[rt][0-9a-f]{8}_")
SIGNALS = ["KILL", "TERM"]
#: Names of storelayer's staging and scratch databases (test databases are not).
LEFTOVER_KINDS = ("storelayer_restore_", "storelayer_verify_")


class Point(NamedTuple):
    """Where to stop: a storelayer function (``point``, its ``call``-th call) or a
    client tool (``hang``, an argument only it gets); ``restored``: whether the
    target holds the backup once storelayer stopped there."""

    point: str = ""
    call: int = 1
    hang: str = ""
    restored: bool = False


#: Backup points: the dump streaming into the encryption (second chunk), the sealed
#: payload about to become the artifact, the dump tool itself.
BACKUP_POINTS = {
    "streaming": Point("storelayer.backup.stream:Tap.readinto", call=2),
    "artifact": Point("storelayer.backup.create:write_artifact"),
    "dump tool": Point(hang="--single-transaction|--format=custom"),
}
#: Restore points: the decrypted dump streaming into the restore and the full read,
#: the backend's last step before its switch (commit, swap, page copy), the restore
#: tool, after the switch.
RESTORE_POINTS = {
    "streaming": Point("storelayer.backup.unpack:Unpacking._hand_on"),
    "switch": Point(),
    "restore tool": Point(hang="--batch|--set=ON_ERROR_STOP=1"),
    "counting": Point("storelayer.backup.restore:row_counts", restored=True),
}
SWITCH = {
    "postgresql": Point("storelayer_postgresql.restore:commit"),
    "mysql": Point("storelayer_mysql.staging:swap"),
    "sqlite": Point("storelayer_sqlite.backup:copy_in"),
}


#: SQLite runs no client tool: its backend's own dump and restore steps instead.
SQLITE_STEPS = {
    "dump tool": Point("storelayer_sqlite.backup:_image"),
    "restore tool": Point("storelayer_sqlite.backup:driver_connection"),
}


def _at(points: dict[str, Point], name: str, backend_name: str) -> Point:
    point = SWITCH[backend_name] if name == "switch" else points[name]
    if point.hang:
        if backend_name == "sqlite":  # no client tool: the backend's own step instead
            return SQLITE_STEPS[name]
        marks = point.hang.split("|")
        return point._replace(hang=marks[0] if backend_name == "mysql" else marks[1])
    return point


class Account(NamedTuple):
    """A filled database, a URL to it as a throwaway account with a password (on MySQL
    ``in_place``: one that may not create databases)."""

    db: Database
    url: URL
    secret: str
    in_place: bool = False


def _postgresql_account(db: Database, user: str, secret: str) -> Iterator[URL]:
    database = db.url.database
    with db.engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {user} LOGIN PASSWORD '{secret}'"))
        connection.execute(text(f'ALTER DATABASE "{database}" OWNER TO {user}'))
        connection.execute(text(f"ALTER SCHEMA public OWNER TO {user}"))
    try:
        yield db.url.set(username=user, password=secret)
    finally:
        db.dispose()
        with db.engine.begin() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" OWNER TO CURRENT_USER'))
            connection.execute(text(f"REASSIGN OWNED BY {user} TO CURRENT_USER"))
            connection.execute(text(f"DROP OWNED BY {user}"))
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP ROLE IF EXISTS {user}"))


def _mysql_account(db: Database, user: str, secret: str, databases: bool = True) -> Iterator[URL]:
    """With ``databases``, the account may create storelayer's staging databases."""
    with db.engine.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}'"))
        connection.execute(text(f"GRANT ALL ON `{db.url.database}`.* TO '{user}'@'%'"))
        if databases:
            connection.execute(text(f"GRANT ALL ON `storelayer\\_%`.* TO '{user}'@'%'"))
    try:
        yield db.url.set(username=user, password=secret)
    finally:
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))


@pytest.fixture
def account(
    new_database: NewDatabase, backend_name: str, request: pytest.FixtureRequest
) -> Iterator[Account]:
    """The sample tables and one marker row, owned by the account that backs up; on
    MySQL also an account that may not create databases (the restore stages its tables
    inside the target)."""
    in_place = getattr(request, "param", "") == "in place"
    db = new_database()
    secret, user = f"kill-{secrets.token_hex(8)}", f"sl_kill_{secrets.token_hex(4)}"
    accounts = {
        "postgresql": _postgresql_account,
        "mysql": partial(_mysql_account, databases=not in_place),
    }
    if backend_name not in accounts:  # SQLite: no account, no password
        fill_sample(db)
        yield Account(db, db.url, "")
        return
    for url in accounts[backend_name](db, user, secret):
        as_account = storelayer.connect(url, backend=backend_name)
        try:
            fill_sample(as_account)
        finally:
            as_account.dispose()
        yield Account(db, url, secret, in_place)


def leftover_databases(db: Database, pid: int | None = None) -> set[str]:
    """Databases named like storelayer's staging and scratch databases; with ``pid``,
    only those of that process (``storelayer_<kind>_<host>_<pid>_...``): other tests
    on the same server make theirs meanwhile."""
    queries = {
        "postgresql": "SELECT datname FROM pg_database WHERE datname LIKE :p",
        "mysql": "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE :p",
    }
    query = queries.get(db.engine.dialect.name)
    if query is None:
        return set()
    with db.engine.connect() as connection:
        names = connection.execute(text(query), {"p": "storelayer\\_%"}).scalars()
        found = {str(n) for n in names if str(n).startswith(LEFTOVER_KINDS)}
    return found if pid is None else {n for n in found if f"_{pid}_" in n}


def _without_staged_tables(tables: dict[str, T]) -> dict[str, T]:
    """The tables of a target without the staging tables a killed restore left inside
    it (MySQL without CREATE DATABASE); the next run removes them."""
    return {n: v for n, v in tables.items() if not STAGED_TABLE.match(n)}


@pytest.mark.parametrize("signal_name", SIGNALS)
@pytest.mark.parametrize("where", list(BACKUP_POINTS))
def test_killed_encrypted_backup_leaves_no_tool_no_secret_no_clear_dump(
    account: Account, backend_name: str, tmp_path: Path, where: str, signal_name: str
) -> None:
    point = _at(BACKUP_POINTS, where, backend_name)
    marker = plant_marker(account.db)
    harness = Harness(tmp_path, backend_name, account.url, account.secret)
    backups = tmp_path / "backups"
    backups.mkdir()
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    args = ("backup", "--dir", str(backups), "--compression", "none", "-r", recipient)
    process = harness.start(*args, hang=point.hang, point=point.point, call=point.call)
    assert harness.kill_when_ready(process, kill_signal(signal_name)) != 0
    harness.assert_nothing_left(backups)
    assert files_holding(marker, harness.tmp, backups) == []
    finished = harness.run(*args)
    assert finished.returncode == 0, finished.stderr
    assert [p.name.endswith(".storelayer") for p in backups.iterdir()] == [True]
    assert list(harness.tmp.iterdir()) == []
    assert files_holding(marker, harness.tmp, backups) == []


@pytest.mark.parametrize("signal_name", SIGNALS)
@pytest.mark.parametrize("where", list(RESTORE_POINTS))
@pytest.mark.parametrize(
    "account",
    # staging tables inside the target: MySQL only (an account without CREATE DATABASE)
    ["staging database", pytest.param("in place", marks=pytest.mark.only_backends("mysql"))],
    indirect=True,
)
def test_killed_restore_leaves_the_target_unchanged_or_restored_and_checked(
    account: Account, backend_name: str, tmp_path: Path, where: str, signal_name: str
) -> None:
    """The backup is encrypted and stored uncompressed, so any clear copy of the dump
    that the restore wrote, whole or in part, would show the marker row."""
    point = _at(RESTORE_POINTS, where, backend_name)
    if account.in_place and where == "switch":
        point = Point("storelayer_mysql.staging:swap_in_place")
    marker = plant_marker(account.db)
    harness = Harness(tmp_path, backend_name, account.url, account.secret)
    artifact, key = tmp_path / "a.storelayer", tmp_path / "key.txt"
    identity = pyrage.x25519.Identity.generate()
    key.write_text(f"{identity}\n")
    recipient = str(identity.to_public())
    backup = ("backup", "--compression", "none", "-r", recipient, str(artifact))
    assert harness.run(*backup).returncode == 0
    full = checksums(account.db)
    with account.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM notes WHERE id > 10"))
    before = checksums(account.db)
    args = ("restore", "--force", "--identity", str(key), str(artifact))
    process = harness.start(*args, hang=point.hang, point=point.point, call=point.call)

    def nothing_clear_at_the_point() -> None:
        assert files_holding(marker, tmp_path) == []

    status = harness.kill_when_ready(process, kill_signal(signal_name), nothing_clear_at_the_point)
    assert status != 0, harness.killed_output
    harness.assert_nothing_left()
    assert files_holding(marker, tmp_path) == []
    account.db.dispose()
    expected = full if point.restored else before
    assert _without_staged_tables(checksums(account.db)) == expected, harness.killed_output
    left = leftover_databases(account.db, process.pid)
    finished = harness.run(*args)
    assert finished.returncode == 0, finished.stderr
    assert f"into {Path(str(account.db.url.database)).name} ".encode() in finished.stdout
    assert checksums(account.db) == full
    assert left.isdisjoint(leftover_databases(account.db))
    assert list(harness.tmp.iterdir()) == []
    assert files_holding(marker, tmp_path) == []
