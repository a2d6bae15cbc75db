"""The MySQL/MariaDB backup strategy: pure command building (credentials in a 0600
option file, the database name after ``--``), dump parsing, tool checks, refusal of
non-transactional tables, and an account with a password that never reaches argv."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer import BackupError
from storelayer.testing import Provisioner, Unavailable, provision_or_skip, skip_or_fail
from storelayer_mysql import MySQLBackend
from storelayer_mysql import backup as strategy

BACKEND = MySQLBackend()
SECRET = "Pw \"q\" 'x' \\back#hash;semi"
TOOL = strategy.ToolInfo(Path("/usr/bin/mariadb-dump"), "mariadb", (10, 11))
HOSTILE = URL.create(
    "mysql+pymysql",
    username="root\n[client]\nuser=evil",
    password=SECRET,
    host="h --host=evil",
    port=3307,
    database="--all-databases",
)


# -- pure command building ----------------------------------------------------------------


def test_option_file_quotes_every_value() -> None:
    text_ = strategy.option_file_text(HOSTILE, database="--all-databases")
    lines = text_.splitlines()
    assert lines[0] == "[client]" and lines.count("[client]") == 1
    assert 'user="root\\n[client]\\nuser=evil"' in lines
    assert 'password="Pw \\"q\\" \'x\' \\\\back#hash;semi"' in lines
    assert lines[-2:] == ["[mysql]", 'database="--all-databases"']
    with pytest.raises(BackupError, match="NUL"):
        strategy.option_value("a\0b")


def test_dump_command_keeps_url_values_out_of_argv() -> None:
    args, _env = strategy.dump_command(
        TOOL, Path("/s/client.cnf"), "--all-databases", False, {"PATH": "/bin"}
    )
    assert args[1] == "--defaults-extra-file=/s/client.cnf"
    assert args[-2:] == ["--", "--all-databases"]
    assert {"--single-transaction", "--routines", "--triggers", "--events", "--hex-blob"} <= set(
        args
    )
    assert "--lock-tables" not in args
    joined = " ".join(args)
    assert SECRET not in joined and "evil" not in joined and "3307" not in joined
    locked = strategy.dump_command(TOOL, Path("/c"), "db", True, {}).args
    assert "--lock-tables" in locked and "--single-transaction" not in locked
    mysql_tool = strategy.ToolInfo(Path("/usr/bin/mysqldump"), "mysql", (8, 0))
    assert (
        "--set-gtid-purged=OFF"
        in strategy.dump_command(mysql_tool, Path("/c"), "d", False, {}).args
    )


def test_client_command_has_no_database_or_credentials() -> None:
    args = strategy.client_command(TOOL, Path("/s/client.cnf"), {}).args
    assert args[1] == "--defaults-extra-file=/s/client.cnf" and len(args) == 5


def test_rows_are_counted_in_both_insert_layouts() -> None:
    one_line = [
        b"CREATE TABLE `a` (\n",
        b"INSERT INTO `a` VALUES (1,'x),(y'),(2,'(\\')'),(3,NULL);\n",
        b"CREATE TABLE `empty` (\n",
        b"-- Dump completed on 2024-01-01\n",
    ]
    per_row = [
        b"CREATE TABLE `we``ird` (\n",
        b"INSERT INTO `we``ird` VALUES\n",
        b"(1,'a;'),\n",
        b"(2,0x28293B);\n",
        b"-- Dump completed on 2024-01-01\n",
    ]
    assert strategy.count_rows(one_line) == {"a": 3, "empty": 0}
    assert strategy.count_rows(per_row) == {"we`ird": 2}
    with pytest.raises(BackupError, match="truncated"):
        strategy.count_rows(per_row[:3])
    with pytest.raises(BackupError, match="truncated"):
        strategy.count_rows(one_line[:2])


def test_versions_and_flavors() -> None:
    assert strategy.version_of("mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for x") == (
        10,
        11,
    )
    assert strategy.version_of("mysqldump  Ver 8.0.36 for Linux on x86_64") == (8, 0)
    assert strategy.flavor_of("10.11.19-MariaDB-0+deb12u1") == "mariadb"
    assert strategy.flavor_of("8.0.36") == "mysql"


# -- against the server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(storelayer_provisioner: Provisioner) -> URL:
    try:
        return storelayer_provisioner.server_url(BACKEND)
    except Unavailable as error:
        skip_or_fail(str(error))


@pytest.fixture
def scratch(server_url: URL, storelayer_provisioner: Provisioner) -> Iterator[storelayer.Database]:
    db = storelayer.connect(provision_or_skip(storelayer_provisioner, BACKEND))
    yield db
    db.dispose()


def test_non_transactional_tables_are_refused_unless_locking_is_allowed(
    scratch: storelayer.Database, tmp_path: Path
) -> None:
    with scratch.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE ledger (id INT PRIMARY KEY) ENGINE=MyISAM")
        connection.exec_driver_sql("INSERT INTO ledger VALUES (1), (2), (3)")
    with pytest.raises(BackupError, match=r"ledger \(MyISAM\).*--lock-writes"):
        scratch.backup(tmp_path / "a.storelayer")
    assert not (tmp_path / "a.storelayer").exists()
    manifest = scratch.backup(
        tmp_path / "b.storelayer", options=strategy.BackupOptions(lock_writes=True)
    )
    assert manifest.tables == {"ledger": 3}


def test_missing_or_mismatched_tool_is_refused(
    scratch: storelayer.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="not found on PATH.*apt install m"):
        scratch.backup(tmp_path / "a.storelayer")
    for name in ("mariadb-dump", "mysqldump"):
        fake = tmp_path / name
        fake.write_text("#!/bin/sh\necho 'mysqldump  Ver 5.7.44 for Linux on x86_64'\n")
        fake.chmod(0o755)
    with pytest.raises(BackupError, match="does not fit the"):
        scratch.backup(tmp_path / "b.storelayer")


def recording(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []
    original = subprocess.Popen

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            seen.append([os.fspath(a) for a in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return seen


@pytest.fixture
def account(server_url: URL, scratch: storelayer.Database) -> Iterator[URL]:
    """A user whose password has quotes, a backslash, a hash and a semicolon."""
    user = f"sl_backup_{secrets.token_hex(4)}"
    with storelayer.connect(server_url) as root, root.engine.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": SECRET})
        connection.execute(text(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"))
    try:
        yield scratch.url.set(username=user, password=SECRET)
    finally:
        with storelayer.connect(server_url) as root, root.engine.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))


def test_password_never_in_any_argv(
    account: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = recording(monkeypatch)
    with storelayer.connect(account) as db:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, s TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        db.backup(tmp_path / "p.storelayer")
        db.restore(tmp_path / "p.storelayer", force=True)
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    tools = {Path(args[0]).name for args in seen}
    assert tools & {"mariadb-dump", "mysqldump"} and tools & {"mariadb", "mysql"}
    for args in seen:
        assert not any(SECRET in arg or "password" in arg.lower() for arg in args), args


def _tables_and_keys(db: storelayer.Database) -> tuple[list[str], list[tuple[str, str]]]:
    with db.engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "ORDER BY 1"
        ).scalars()
        keys = connection.exec_driver_sql(
            "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1, 2"
        ).all()
        return [str(t) for t in tables], [(str(t), str(k)) for t, k in keys]


def _rows(db: storelayer.Database) -> dict[str, list[Any]]:
    with db.engine.connect() as connection:
        return {
            t: sorted(connection.exec_driver_sql(f"SELECT * FROM {t}").all())
            for t in ("parent", "child", "other")
        }


def test_restore_without_create_database_stages_tables_inside_the_target(
    server_url: URL, scratch: storelayer.Database, tmp_path: Path
) -> None:
    """An account with every privilege on its database and none to create another:
    the restore stages its tables in the target and swaps them in atomically, foreign
    keys and their names kept; a dump with a view is refused, naming the privilege and
    the way out, and leaves the target as it was."""
    user = f"sl_nocreate_{secrets.token_hex(4)}"
    with storelayer.connect(server_url) as root, root.engine.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": SECRET})
        connection.execute(text(f"GRANT ALL ON `{scratch.url.database}`.* TO '{user}'@'%'"))
    try:
        with storelayer.connect(scratch.url.set(username=user, password=SECRET)) as db:
            with db.engine.begin() as connection:
                for statement in (
                    "CREATE TABLE parent (id INT PRIMARY KEY, s TEXT)",
                    "CREATE TABLE child (id INT PRIMARY KEY, p INT, q INT, "
                    "CONSTRAINT child_to_parent FOREIGN KEY (p) REFERENCES parent (id), "
                    "FOREIGN KEY (q) REFERENCES parent (id))",
                    "CREATE TABLE other (id INT PRIMARY KEY)",
                    "INSERT INTO parent VALUES (1, 'CREATE TABLE `child` ('), (2, 'b')",
                    "INSERT INTO child VALUES (1, 1, 2), (2, 2, 1)",
                    "INSERT INTO other VALUES (7)",
                ):
                    connection.exec_driver_sql(statement)
            shape, rows = _tables_and_keys(db), _rows(db)
            assert len(shape[1]) == 2
            db.backup(tmp_path / "a.storelayer")
            with db.engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM child WHERE id = 2")
                connection.exec_driver_sql("INSERT INTO other VALUES (8)")
            report = db.restore(tmp_path / "a.storelayer", force=True)
            assert report.tables == {"parent": 2, "child": 2, "other": 1}
            db.dispose()
            assert _tables_and_keys(db) == shape and _rows(db) == rows
            with db.engine.begin() as connection:
                connection.exec_driver_sql("CREATE VIEW v AS SELECT id FROM parent")
            db.backup(tmp_path / "view.storelayer")
            with db.engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM other")
            changed = _rows(db)
            with pytest.raises(BackupError, match=r"views.*CREATE and DROP.*--jobs 2") as e:
                db.restore(tmp_path / "view.storelayer", force=True)
            assert SECRET not in str(e.value)
            assert _rows(db) == changed
            assert _tables_and_keys(db)[0] == [*shape[0], "v"]
            report = db.restore(tmp_path / "view.storelayer", force=True, jobs=2)
            assert report.tables == {"parent": 2, "child": 2, "other": 1}
    finally:
        with storelayer.connect(server_url) as root, root.engine.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
