"""PgBouncer in transaction mode with server_round_robin (storelayer.testing.clusters):
storelayer through it, with ``pooler="transaction"``."""

from __future__ import annotations

import psycopg2  # type: ignore[import-untyped]
import pytest

from storelayer.testing import PgBouncerPool

pytestmark = pytest.mark.cluster


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


def test_the_fixture_pools_per_transaction_round_robin(pgbouncer: PgBouncerPool) -> None:
    settings = admin_settings(pgbouncer)
    assert settings["pool_mode"] == "transaction"
    assert settings["server_round_robin"] == "1"
    assert settings["listen_addr"] == "127.0.0.1"
