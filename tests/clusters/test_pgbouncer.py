"""PgBouncer in transaction mode with server_round_robin (storelayer.testing.clusters):
storelayer through it, with ``pooler="transaction"``: no prepared statement crosses
clients, statement timeouts hold per transaction, the migration lock holds and is gone
afterwards, a refused start-up parameter is a configuration error naming the fix."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer import ConfigurationError, StatementTimeout
from storelayer.plugins import get_plugin_manager
from storelayer.testing import PgBouncerPool
from storelayer.testing.clusters_pg import autocommit

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


def admin_settings(pool: PgBouncerPool) -> dict[str, str]:
    url = pool.url("pgbouncer")
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, dbname="pgbouncer"
    )
    connection.autocommit = True
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW CONFIG")
        return {row[0]: row[1] for row in cursor.fetchall()}
    finally:
        connection.close()


@pytest.fixture
def pooled_database(pgbouncer: PgBouncerPool) -> Iterator[str]:
    """A scratch database on the server behind the pooler; its name."""
    backend = get_plugin_manager().backends()["postgresql"]
    name = f"h14_pool_{secrets.token_hex(4)}"
    server = pgbouncer.direct_url("postgres")
    backend.provisioning.create_database(server, name)
    try:
        yield name
    finally:
        backend.provisioning.drop_database(server, name)


def test_the_fixture_pools_per_transaction_round_robin(pgbouncer: PgBouncerPool) -> None:
    settings = admin_settings(pgbouncer)
    assert settings["pool_mode"] == "transaction"
    assert settings["server_round_robin"] == "1"
    assert settings["listen_addr"] == "127.0.0.1"


async def hammer(url: URL, tasks: int, seconds: float, **settings: object) -> tuple[int, list[str]]:
    """``tasks`` tasks running the same few statements (prepared after 5 runs by psycopg 3
    unless told not to) for ``seconds``: (units done, errors)."""
    db = storelayer.connect_async(url, pool_size=tasks, **settings)  # type: ignore[arg-type]
    done, errors = 0, []
    deadline = time.monotonic() + seconds

    async def worker(number: int) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            try:
                async with db.session() as s:
                    await s.execute(
                        text("INSERT INTO items (kind, n) VALUES (:kind, :n)"),
                        {"kind": f"task{number}", "n": number},
                    )
                    found = await s.execute(
                        text("SELECT count(*) FROM items WHERE n = :n"), {"n": number}
                    )
                    assert found.scalar_one() >= 1
                done += 1
            except Exception as error:
                errors.append(type(error).__name__)

    try:
        await asyncio.gather(*(worker(i) for i in range(tasks)))
    finally:
        await db.dispose()
    return done, errors


def create_items(pool: PgBouncerPool, database: str) -> None:
    with autocommit(pool.direct_url(database)) as connection:
        connection.execute(
            text("CREATE TABLE items (id serial PRIMARY KEY, kind text, n smallint NOT NULL)")
        )


def test_async_tasks_through_transaction_pooling_see_no_errors(
    pgbouncer: PgBouncerPool, pooled_database: str
) -> None:
    create_items(pgbouncer, pooled_database)
    url = pgbouncer.url(pooled_database)
    # The same load without the setting, for the figures: psycopg 3's prepared statements
    # cross clients (how many errors depends on the machine's load: reported, not checked).
    unsafe_done, unsafe = asyncio.run(hammer(url, 16, 3.0))
    done, errors = asyncio.run(hammer(url, 16, 10.0, pooler="transaction", statement_timeout=5))
    print(
        f"pgbouncer: without the setting {len(unsafe)} errors in {unsafe_done} units (3 s); "
        f"with it {len(errors)} errors in {done} units (10 s)"
    )
    assert errors == []
    assert done > 16 * 5  # every task went past psycopg's prepare threshold


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_statement_timeout_cancels_through_the_pooler(
    pgbouncer: PgBouncerPool, pooled_database: str, mode: str
) -> None:
    url = pgbouncer.url(pooled_database)

    def sleep(seconds: float, **settings: object) -> float:
        started = time.monotonic()
        if mode == "sync":
            db = storelayer.connect(url, pooler="transaction", **settings)  # type: ignore[arg-type]
            try:
                with db.session() as s:
                    s.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
            finally:
                db.dispose()
        else:

            async def run() -> None:
                db = storelayer.connect_async(url, pooler="transaction", **settings)  # type: ignore[arg-type]
                try:
                    async with db.session() as s:
                        await s.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
                finally:
                    await db.dispose()

            asyncio.run(run())
        return time.monotonic() - started

    baseline = sleep(3.0)  # the full sleep, no timeout: what "not cancelled" costs here
    started = time.monotonic()
    with pytest.raises(StatementTimeout):
        sleep(3.0, statement_timeout=1)
    cancelled = time.monotonic() - started
    print(f"pgbouncer {mode}: pg_sleep(3) took {baseline:.2f} s, cancelled after {cancelled:.2f} s")
    assert cancelled < baseline, (cancelled, baseline)
    # The timeout was per transaction: the next client on that server connection has none.
    assert sleep(1.5) >= 1.5


def test_a_refused_startup_parameter_names_the_fix_and_is_not_retried(
    pgbouncer: PgBouncerPool, pooled_database: str
) -> None:
    db = storelayer.connect(pgbouncer.url(pooled_database), statement_timeout=5)
    attempts = 0

    def unit(s: storelayer.Session) -> None:
        nonlocal attempts
        attempts += 1
        s.execute(text("SELECT 1"))

    try:
        with pytest.raises(ConfigurationError, match=r"pooler='transaction'") as raised:
            db.run_in_transaction(unit)
    finally:
        db.dispose()
    assert "STORELAYER_POOLER=transaction" in str(raised.value)
    assert attempts <= 1


def advisory_locks(pool: PgBouncerPool, database: str) -> int:
    with autocommit(pool.direct_url("postgres")) as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND d.datname = :name"
                ),
                {"name": database},
            ).scalar_one()
        )


def test_two_concurrent_migrators_through_the_pooler(pgbouncer: PgBouncerPool) -> None:
    backend = get_plugin_manager().backends()["postgresql"]
    server = pgbouncer.direct_url("postgres")
    for trial in range(3):
        name = f"h14_migrate_{secrets.token_hex(4)}"
        backend.provisioning.create_database(server, name)
        try:
            env = {
                **os.environ,
                "DATABASE_URL": pgbouncer.url(name).render_as_string(hide_password=False),
                "STORELAYER_POOLER": "transaction",
            }
            command = [sys.executable, "-m", "storelayer", "migrate", "upgrade"]
            runs = [
                subprocess.Popen(
                    command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
                for _ in range(2)
            ]
            outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
            assert [run.returncode for run in runs] == [0, 0], (trial, outputs)
            assert advisory_locks(pgbouncer, name) == 0
            with autocommit(pgbouncer.direct_url(name)) as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version"))
                assert len(versions.all()) == 1
        finally:
            backend.provisioning.drop_database(server, name)
