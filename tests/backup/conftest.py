"""Fixtures of the backup tests: scratch databases reused within a module, a private
copy of the Chinook sample."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sample_tables import wipe
from sqlalchemy.engine import URL

import storelayer
from storelayer import Backend, Database
from storelayer.testing import Provisioner, provision_or_skip


@pytest.fixture(scope="module")
def database_pool(backend: Backend) -> Iterator[list[Database]]:
    """Scratch databases of a module, reused (wiped) from test to test: creating and
    dropping a server database costs seconds, dropping tables does not."""
    pool: list[Database] = []
    yield pool
    for db in pool:
        db.dispose()


@pytest.fixture
def new_database(
    backend: Backend, storelayer_provisioner: Provisioner, database_pool: list[Database]
) -> Callable[[], Database]:
    """Hand out empty scratch databases of the backend under test."""
    handed = 0

    def make() -> Database:
        nonlocal handed
        if handed == len(database_pool):
            url: URL = provision_or_skip(storelayer_provisioner, backend)
            database_pool.append(storelayer.connect(url, backend=backend.name))
        db = database_pool[handed]
        handed += 1
        db.dispose()
        wipe(db)
        return db

    return make


@pytest.fixture
def chinook(chinook_sample: Path, tmp_path: Path) -> Path:
    """A private copy of the Chinook SQLite sample (read-only in shared/)."""
    copy = tmp_path / "chinook.db"
    copy.write_bytes(chinook_sample.read_bytes())
    return copy
