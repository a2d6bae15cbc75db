"""The PostgreSQL backup strategy: pure command building (nothing from the URL in argv,
the password in a 0600 passfile), tool checks, full reads that catch what
``pg_restore --list`` misses, a server that checks passwords, and artifacts that plain
pg_restore reads."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2  # type: ignore[import-untyped]
import pytest
import zstandard
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.engine import URL, make_url

import storelayer
from storelayer import BackupError
from storelayer.backup import BackupOptions, read_manifest
from storelayer.backup.counts import table_checksum
from storelayer.copy import copy_database
from storelayer.testing import Provisioner, provision_or_skip, skip_or_fail
from storelayer_postgresql import PostgreSQLBackend
from storelayer_postgresql import backup as strategy
from storelayer_postgresql.testing import PostgreSQLServer, find_bindir, make_workdir

BACKEND = PostgreSQLBackend()
SECRET = "pa:ss\\wo'rd \"#1"
HOSTILE = URL.create(
    "postgresql+psycopg2",
    username="-U evil",
    password=SECRET,
    host="h --file=/etc/x",
    port=5433,
    database="db' host=evil",
    query={"sslmode": "require", "options": "-c x=1"},
)


# -- pure command building ----------------------------------------------------------------


def test_nothing_from_the_url_reaches_argv() -> None:
    env = strategy.libpq_environment(HOSTILE, {"PATH": "/bin", "PGSERVICE": "x"}, Path("/p"))
    dump = strategy.dump_command(Path("/bin/pg_dump"), Path("/t/dump"), env)
    restore = strategy.restore_command(
        Path("/bin/pg_restore"), Path("/t/dump"), str(HOSTILE.database), env, BackupOptions()
    )
    for args in (dump.args, restore.args):
        text_ = " ".join(args)
        assert "evil" not in text_.replace("dbname='db\\' host=evil'", "")
        assert SECRET not in text_ and "5433" not in text_ and "/etc/x" not in text_
    assert env["PGUSER"] == "-U evil" and env["PGHOST"] == "h --file=/etc/x"
    assert env["PGDATABASE"] == "db' host=evil" and env["PGSSLMODE"] == "require"
    assert env["PGPASSFILE"] == "/p" and "PGSERVICE" not in env and "PGOPTIONS" not in env
    assert SECRET not in env.values()


def test_restore_target_is_one_quoted_conninfo_value() -> None:
    conninfo = strategy.conninfo_dbname("db' host=evil \\")
    assert psycopg2.extensions.parse_dsn(conninfo) == {"dbname": "db' host=evil \\"}


def test_restore_is_one_transaction_unless_parallel() -> None:
    def args(**options: Any) -> list[str]:
        env: dict[str, str] = {}
        return strategy.restore_command(
            Path("r"), Path("d"), "db", env, BackupOptions(**options)
        ).args

    assert "--single-transaction" in args() and "--exit-on-error" in args()
    assert "--jobs=4" in args(jobs=4, atomic=False)
    assert "--single-transaction" not in args(jobs=4, atomic=False)
    assert {"--clean", "--if-exists"} <= set(args(replace=True))


def test_passfile_escapes_separators() -> None:
    assert strategy.passfile_text("a:b\\c") == "*:*:*:*:a\\:b\\\\c\n"
    with pytest.raises(BackupError, match="line break"):
        strategy.passfile_text("a\nb")


def test_copy_blocks_are_counted_per_table() -> None:
    script = [
        b"\\restrict abc\n",
        b'COPY public."Album" ("AlbumId") FROM stdin;\n',
        b"1\n",
        b"2\n",
        b"\\.\n",
        b"COPY sales.orders (id) FROM stdin;\n",
        b"\\.\n",
        b'COPY public."we""ird.name" (id) FROM stdin;\n',
        b"7\n",
        b"\\.\n",
    ]
    assert strategy.count_copy_rows(script) == {"Album": 2, "sales.orders": 0, 'we"ird.name': 1}
    with pytest.raises(BackupError, match="ends inside the data of table Album"):
        strategy.count_copy_rows(script[:3])


def test_tool_versions_are_parsed() -> None:
    assert strategy.tool_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == 15
    assert strategy.tool_major("pg_restore (PostgreSQL) 9.6.24") == 9


# -- against the server -------------------------------------------------------------------


@pytest.fixture
def scratch(storelayer_provisioner: Provisioner) -> Iterator[storelayer.Database]:
    db = storelayer.connect(provision_or_skip(storelayer_provisioner, BACKEND))
    yield db
    db.dispose()


def fill(db: storelayer.Database, rows: int = 500) -> Table:
    table = Table(
        "items", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(200))
    )
    table.create(db.engine)
    with db.engine.begin() as connection:
        connection.execute(
            insert(table), [{"id": i, "name": f"item {i} " * 20} for i in range(1, rows + 1)]
        )
    return table


def test_missing_tool_names_the_package(
    scratch: storelayer.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match=r"pg_dump not found on PATH.*postgresql-client-1\d"):
        scratch.backup(tmp_path / "a.storelayer")
    assert not list(tmp_path.iterdir())


def test_tool_older_than_the_server_is_refused(
    scratch: storelayer.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("STORELAYER_TOOLS_PATH", str(tmp_path))
    with pytest.raises(BackupError, match=r"version 9, older than the PostgreSQL 1\d server"):
        scratch.backup(tmp_path / "a.storelayer")


def test_full_read_refuses_a_truncated_dump_that_list_accepts(
    scratch: storelayer.Database, tmp_path: Path
) -> None:
    fill(scratch, rows=3000)
    dump = tmp_path / "dump"
    scratch.backend.backups.backup(scratch.engine, dump)
    assert scratch.backend.backups.inspect(dump) == {"items": 3000}
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 3 // 4])
    listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, check=False)
    assert listed.returncode == 0  # the archive's table of contents is intact
    with pytest.raises(BackupError, match="pg_restore"):
        scratch.backend.backups.inspect(dump)


def recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    seen: list[tuple[list[str], dict[str, str]]] = []
    original = subprocess.Popen

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            seen.append(([os.fspath(a) for a in args], dict(kwargs.get("env") or {})))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return seen


@pytest.fixture(scope="module")
def password_server() -> Iterator[URL]:
    if find_bindir() is None:
        skip_or_fail("PostgreSQL server binaries not found; set PG_BINDIR")
    with PostgreSQLServer(make_workdir(), password=SECRET) as server:
        yield server.url


def test_password_never_in_any_argv(
    password_server: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_url = BACKEND.provisioning.create_database(password_server, "with_password")
    target_url = BACKEND.provisioning.create_database(password_server, "restored")
    seen = recording(monkeypatch)
    with storelayer.connect(source_url) as source, storelayer.connect(target_url) as target:
        fill(source, rows=50)
        source.backup(tmp_path / "p.storelayer")
        target.restore(tmp_path / "p.storelayer")
        with target.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM items").scalar() == 50
    tools = {Path(args[0]).name for args, _ in seen}
    assert {"pg_dump", "pg_restore"} <= tools
    for args, env in seen:
        assert not any(SECRET in arg for arg in args), args
        assert SECRET not in env.values() and "PGPASSWORD" not in env


def test_chinook_backup_restores_with_plain_pg_restore(
    storelayer_provisioner: Provisioner, chinook_sample: Path, tmp_path: Path
) -> None:
    chinook = tmp_path / "chinook.db"
    chinook.write_bytes(chinook_sample.read_bytes())
    source_url = provision_or_skip(storelayer_provisioner, BACKEND)
    target_url = provision_or_skip(storelayer_provisioner, BACKEND)
    copy_database(f"sqlite:///{chinook}", source_url)
    with storelayer.connect(source_url) as source:
        source.backup(tmp_path / "chinook.storelayer")
        expected = checksums(source)
    manifest = read_manifest(tmp_path / "chinook.storelayer")
    with tarfile.open(tmp_path / "chinook.storelayer") as tar:
        packed = tar.extractfile(manifest.payload.name)
        assert packed is not None
        (tmp_path / "chinook.pgdump").write_bytes(
            zstandard.ZstdDecompressor().decompressobj().decompress(packed.read())
        )
    target = make_url(str(target_url))
    env = {
        **os.environ,
        "PGHOST": str(target.host),
        "PGPORT": str(target.port),
        "PGUSER": str(target.username),
    }
    subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            str(target.database),
            str(tmp_path / "chinook.pgdump"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    with storelayer.connect(target_url) as restored:
        assert checksums(restored) == expected
    assert manifest.total_rows == 15607


def checksums(db: storelayer.Database) -> dict[str, tuple[int, str]]:
    metadata = MetaData()
    metadata.reflect(db.engine)
    with db.engine.connect() as connection:
        return {name: table_checksum(connection, t) for name, t in metadata.tables.items()}
