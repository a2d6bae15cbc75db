"""8 writers through ``run_in_transaction`` with default arguments while a throwaway
PostgreSQL primary is restarted twice, a fast shutdown and then a kill -9 of every
server process: no row lost, none duplicated, no error reaching a writer. A COMMIT lost
with its connection is resolved by the unit's commit marker row once the server is
back (storelayer_postgresql.markers). The machine's shared server is never touched."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _checks import workload_database
from _processes import alive, descendants, describe
from _restarts import check_restarts_reach_no_writer

from storelayer.testing import skip_or_fail
from storelayer_postgresql.testing import PostgreSQLServer, make_workdir


@pytest.fixture(scope="module")
def server() -> Iterator[PostgreSQLServer]:
    """One throwaway PostgreSQL server for the module."""
    try:
        instance = PostgreSQLServer(make_workdir(), settings={"max_connections": "40"})
    except FileNotFoundError as error:
        skip_or_fail(str(error))
    with instance:
        yield instance


def kill_and_start(server: PostgreSQLServer) -> None:
    """SIGKILL the postmaster and every process under it (a crashed machine or
    container, not a clean stop), then start the server again: it recovers from WAL."""
    postmaster = int((Path(server.datadir) / "postmaster.pid").read_text().split()[0])
    victims = descendants(postmaster)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(map(alive, victims)):
        assert time.monotonic() < deadline, describe(victims)
        time.sleep(0.05)
    # As after a reboot: no process holds the lock files. (A killed postmaster may stay a
    # zombie for a while where PID 1 reaps late, and its PID would look alive.)
    for lock in [Path(server.datadir) / "postmaster.pid", *server.workdir.glob(".s.PGSQL.*.lock")]:
        lock.unlink(missing_ok=True)
    server.start()


def test_restarts_lose_double_and_show_nothing_to_default_units(
    server: PostgreSQLServer,
) -> None:
    url = workload_database("postgresql", server.url)
    check_restarts_reach_no_writer(
        url, [server.restart, lambda: kill_and_start(server)], "postgresql"
    )
