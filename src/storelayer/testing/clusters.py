"""Real clusters for tests: the topologies users deploy, started from the server binaries
on the machine and torn down afterwards (docs/operations/clusters.md).

- :class:`~storelayer.testing.clusters_pg.PgBouncerPool`: PgBouncer in transaction mode with
  ``server_round_robin = 1`` in front of a PostgreSQL server;
- :class:`~storelayer.testing.clusters_pg.PgAutoFailover`: a pg_auto_failover monitor and
  two nodes (a primary and its hot standby, promoted automatically);
- :class:`~storelayer.testing.clusters_galera.GaleraCluster`: three MariaDB Galera nodes.

Every process listens on 127.0.0.1 only, on free ports, runs as the service user when the
tests run as root, and is stopped by its PID (its process group). A run killed before its
teardown leaves a directory whose owner is gone: the next run stops what it recorded there.
The pytest fixtures (``pgbouncer``, ``pg_failover``, ``galera_cluster``) start one of each
per session; missing binaries skip, or fail when ``CI`` is true. Tests using them are marked
``cluster``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from storelayer.testing._provision import in_ci
from storelayer.testing.clusters_galera import GaleraCluster
from storelayer.testing.clusters_pg import PgAutoFailover, PgBouncerPool

T = TypeVar("T")


@contextlib.contextmanager
def started(cluster: AbstractContextManager[T], what: str) -> Iterator[T]:
    """``cluster`` entered; skip (fail when ``CI`` is true) when its binaries are missing."""
    try:
        running = cluster.__enter__()
    except FileNotFoundError as exc:
        if in_ci():
            pytest.fail(f"{what}: {exc} (CI is set: it must run)")
        pytest.skip(f"{what}: {exc}")
    try:
        yield running
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncerPool]:
    """PgBouncer in transaction mode, ``server_round_robin = 1``, in front of the test
    PostgreSQL server, for the whole session."""
    with started(PgBouncerPool(), "PgBouncer") as pool:
        yield pool


@pytest.fixture(scope="session")
def pg_failover() -> Iterator[PgAutoFailover]:
    """A pg_auto_failover monitor with a primary and a standby, for the whole session."""
    with started(PgAutoFailover(), "pg_auto_failover") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A 3-node MariaDB Galera cluster, for the whole session."""
    with started(GaleraCluster(), "Galera") as cluster:
        yield cluster
