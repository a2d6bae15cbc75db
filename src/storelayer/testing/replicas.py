"""Real replication for tests: a private primary with replicas, started from the server
binaries on the machine by the backend plugin and torn down afterwards.

A backend offers it by a method ``start_test_replicas(count) -> ReplicaSet`` (a context
manager); the bundled PostgreSQL (``pg_basebackup -R`` standbys) and MySQL (MariaDB GTID
replicas) backends do. Missing server binaries skip the test, or fail it when ``CI`` is
true. The ``replica_set`` fixture gives a module one cluster of the backend under test.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.backup.children import owner_alive
from storelayer.testing._provision import in_ci

#: File in a replica set's directory naming the process that owns it.
OWNER_FILE = "owner.pid"


def claim_workdir(workdir: Path) -> None:
    """Record this process as the owner of ``workdir``."""
    (workdir / OWNER_FILE).write_text(str(os.getpid()))


def orphaned_workdirs(prefix: str) -> list[Path]:
    """Replica-set directories under the temp dir whose owner process is gone (a test
    run killed before its teardown): the caller stops their servers and removes them.
    Directories without an owner file are left alone."""
    orphans = []
    for workdir in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((workdir / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not owner_alive(owner):
            orphans.append(workdir)
    return orphans


class ReplicaSet(Protocol):
    """A running primary with replicas, as a backend's ``start_test_replicas`` gives."""

    @property
    def primary_url(self) -> URL:
        """The primary, as a superuser."""

    @property
    def replica_urls(self) -> list[URL]:
        """The replicas, in order, as a superuser."""

    def database_urls(self, name: str) -> tuple[URL, list[URL]]:
        """Primary and replica URLs of database ``name``."""

    def create_database(self, name: str) -> None:
        """Create ``name`` on the primary and wait until every replica has it."""

    def set_delay(self, index: int, seconds: float) -> None:
        """Make replica ``index`` apply each commit ``seconds`` late (0: no delay)."""

    def stop_replica(self, index: int) -> None:
        """Kill replica ``index``: its connections drop mid-query."""

    def start_replica(self, index: int) -> None:
        """Start replica ``index`` again; it resumes replicating."""

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until every running replica replayed what the primary wrote so far."""


@contextmanager
def start_replicas(backend: Backend, count: int = 1) -> Iterator[ReplicaSet]:
    """A started replica set of ``backend``; skip (fail when ``CI`` is true) when the
    server binaries are missing, skip when the backend offers no replica fixture."""
    start: Any = getattr(backend, "start_test_replicas", None)
    if start is None:
        pytest.skip(f"backend {backend.name!r} offers no replication fixture")
    try:
        cluster = start(count)
        running: ReplicaSet = cluster.__enter__()
    except FileNotFoundError as exc:
        if in_ci():
            pytest.fail(f"{backend.name} replication: {exc} (CI is set: it must run)")
        pytest.skip(f"{backend.name} replication: {exc}")
    try:
        yield running
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(scope="module")
def replica_set(backend: Backend) -> Iterator[ReplicaSet]:
    """A private primary with two replicas of the backend under test, for one module."""
    with start_replicas(backend, 2) as cluster:
        yield cluster
