"""8 writers through ``run_in_transaction`` with default arguments while a throwaway
MariaDB server is restarted twice, a clean shutdown and then a kill -9: no row lost,
none duplicated, no error reaching a writer. A COMMIT lost with its connection is
resolved by the unit's commit marker (storelayer_mysql.transactions) once the server is
back. The machine's shared server is never touched."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _checks import workload_database
from _restarts import check_restarts_reach_no_writer

from storelayer.testing import skip_or_fail
from storelayer_mysql.testing import MariaDBServer, find_binaries


@pytest.fixture(scope="module")
def server() -> Iterator[MariaDBServer]:
    """One throwaway MariaDB server for the module."""
    if find_binaries() is None:
        skip_or_fail("MariaDB server binaries (mariadbd, mariadb-install-db) not found")
    workdir = Path(tempfile.mkdtemp(prefix="storelayer-mariadb-restarts-"))
    with MariaDBServer(workdir, options=("--max-connections=60",)) as s:
        yield s


def kill_and_start(server: MariaDBServer) -> None:
    """SIGKILL the server (no shutdown at all), then start it: InnoDB recovers."""
    server.kill()
    server.start()


def test_restarts_lose_double_and_show_nothing_to_default_units(server: MariaDBServer) -> None:
    url = workload_database("mysql", server.url)
    check_restarts_reach_no_writer(url, [server.restart, lambda: kill_and_start(server)], "mariadb")
