"""Fixtures of the reference schema's tests: scratch databases of every backend, at the
reference schema's head or empty."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.database import Database, connect
from storelayer.migrations import MigrationManager
from storelayer.reference import models, passwords
from storelayer.testing import Provisioner, provision_or_skip


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at its real cost takes ~80 ms; the tests hash many passwords."""
    monkeypatch.setattr(passwords, "COST", (2**4, 8, 1))


@pytest.fixture
def fresh_url(backend: Backend, storelayer_provisioner: Provisioner) -> URL:
    """A new, empty database of the backend under test (dropped at the end of the run)."""
    return provision_or_skip(storelayer_provisioner, backend)


@pytest.fixture
def fresh_db(fresh_url: URL, backend: Backend) -> Iterator[Database]:
    """A connected ``Database`` on a new, empty database."""
    db = connect(fresh_url, backend=backend.name)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def reference_url(backend: Backend, storelayer_provisioner: Provisioner) -> URL:
    """A database of the backend under test migrated to head once per run."""
    url = provision_or_skip(storelayer_provisioner, backend)
    with connect(url, backend=backend.name) as database:
        MigrationManager(database).upgrade()
    return url


@pytest.fixture
def db(reference_url: URL, backend: Backend) -> Iterator[Database]:
    """A ``Database`` at the reference schema's head, emptied after each test."""
    database = connect(reference_url, backend=backend.name)
    yield database
    with database.session() as s:
        for table in reversed(models.metadata.sorted_tables):
            s.execute(delete(table))
    database.dispose()


class StatementCounter:
    """Counts the SELECT statements an engine runs while it is active."""

    def __init__(self) -> None:
        self.selects = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1


@pytest.fixture
def count_selects(db: Database) -> Iterator[Callable[[], StatementCounter]]:
    """``with`` nothing: call it to start counting the engine's SELECTs."""
    counters: list[StatementCounter] = []

    def start() -> StatementCounter:
        counter = StatementCounter()
        event.listen(db.engine, "before_cursor_execute", counter)
        counters.append(counter)
        return counter

    yield start
    for counter in counters:
        event.remove(db.engine, "before_cursor_execute", counter)


@pytest.fixture
def child_env() -> Callable[[URL], dict[str, str]]:
    """The environment of a ``python -m storelayer`` child process on a URL."""

    def make(url: URL) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATABASE_", "STORELAYER_"))}
        env["DATABASE_URL"] = url.render_as_string(hide_password=False)
        return env

    return make
