"""A PostgreSQL restore whose storelayer was killed never commits: here psql, blocked by
a lock this test holds in the middle of the restore's transaction, would commit once
released if it outlived storelayer; and the check that storelayer sends before its
``COMMIT`` refuses a table whose rows differ."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pytest
from _backup_kills import Harness, wait_for
from sqlalchemy import Column, Integer, MetaData, String, Table, TextClause, insert, text

import storelayer
from storelayer.backup.counts import table_checksum
from storelayer.testing import Provisioner, provision_or_skip
from storelayer_postgresql import PostgreSQLBackend
from storelayer_postgresql.restore import check_statement

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model")
BACKEND = PostgreSQLBackend()


@pytest.fixture
def scratch(storelayer_provisioner: Provisioner) -> Iterator[storelayer.Database]:
    db = storelayer.connect(provision_or_skip(storelayer_provisioner, BACKEND))
    yield db
    db.dispose()


def fill(db: storelayer.Database, rows: int) -> Table:
    table = Table(
        "items", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(50))
    )
    table.metadata.create_all(db.engine)
    with db.engine.begin() as connection:
        connection.execute(insert(table), [{"id": i, "name": f"n{i}"} for i in range(rows)])
    return table


def scalar(db: storelayer.Database, query: TextClause) -> object:
    """One value, read in a new transaction (pg_stat_activity is a snapshot per
    transaction)."""
    with db.engine.connect() as connection:
        return connection.execute(query).scalar()


def test_restore_killed_while_psql_waits_never_commits(
    scratch: storelayer.Database, tmp_path: Path
) -> None:
    table = fill(scratch, 300)
    harness = Harness(
        tmp_path, "postgresql", scratch.url.set(password="kill-secret"), "kill-secret"
    )
    artifact = tmp_path / "a.storelayer"
    assert harness.run("backup", str(artifact)).returncode == 0
    with scratch.engine.begin() as connection:
        connection.execute(text("DELETE FROM items WHERE id >= 10"))
    with scratch.engine.connect() as connection:
        before = table_checksum(connection, table)
    blocker = scratch.engine.connect()
    blocker.execute(text("LOCK TABLE items IN ACCESS SHARE MODE"))
    process = harness.start("restore", "--force", str(artifact))
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    wait_for(lambda: bool(scalar(scratch, waiting)), "psql to block")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    harness.assert_nothing_left()
    blocker.rollback()
    blocker.close()
    sessions = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'psql'"
    )
    wait_for(lambda: not scalar(scratch, sessions), "psql's session to end")
    scratch.dispose()
    with scratch.engine.connect() as connection:
        assert table_checksum(connection, table) == before


def test_the_check_before_commit_refuses_other_row_counts(scratch: storelayer.Database) -> None:
    fill(scratch, 2)
    url = scratch.url
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(check_statement({"public.items": 2}).decode())
            with pytest.raises(psycopg2.Error, match=r"table public.items holds 2 rows.*holds 3"):
                cursor.execute(check_statement({"public.items": 3}).decode())
    finally:
        connection.close()
