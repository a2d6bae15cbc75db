"""Fixtures for testing an application built on storelayer (docs/guide/testing-your-app.md).

The application says what its schema is, in its ``conftest.py``::

    @pytest.fixture(scope="session")
    def storelayer_schema() -> AppSchema:
        return AppSchema(migrations=Path(__file__).parent.parent / "migrations")

(or with the ini options ``storelayer_migrations`` / ``storelayer_models``). Then:

* ``migrated_database``: per test session and backend, a scratch database with the
  schema applied (migrations upgraded to head, or ``create_all``).
* ``rollback_database``: that ``Database`` for one test: every unit of work it opens
  (``session()``, ``read_session()``, ``run_in_transaction``) joins one outer
  transaction, rolled back when the test ends, even when the code under test commits.
* ``rollback_session``: a ``Session`` in that same outer transaction.
* ``async_rollback_database``: ``async with async_rollback_database() as db`` gives an
  ``AsyncDatabase`` with the same behaviour, opened on the test's own event loop.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import URL

from storelayer.aio import AsyncDatabase, connect_async
from storelayer.backend import Backend
from storelayer.database import Database, DatabaseBase, connect
from storelayer.migrations import MigrationManager
from storelayer.session import Session
from storelayer.testing._provision import Provisioner, provision_or_skip

#: The session factories of a ``Database`` that units of work come from.
FACTORIES = ("_sessions", "_read_sessions", "_autocommit_sessions")


@dataclass(frozen=True)
class AppSchema:
    """What ``migrated_database`` applies: a migration directory (upgraded to head) or,
    without one, the models' ``metadata`` (``create_all``)."""

    migrations: Path | None = None
    metadata: MetaData | None = None
    version_table: str | None = None

    def apply(self, db: Database) -> None:
        """Bring ``db`` (empty) to the application's schema."""
        if self.migrations is not None:
            with MigrationManager(db, script_location=self.migrations,
                                  version_table=self.version_table) as migrations:
                migrations.upgrade()
        elif self.metadata is not None:
            self.metadata.create_all(db.engine)
        else:
            raise pytest.UsageError("AppSchema needs migrations= or metadata=")


def _models(spec: str) -> MetaData:
    module, _, name = spec.partition(":")
    found = getattr(importlib.import_module(module), name)
    return found if isinstance(found, MetaData) else found.metadata


def _rebind(db: DatabaseBase[Any], bind: Any) -> dict[str, Any]:
    """Make every unit of work of ``db`` a savepoint on ``bind`` (a connection in a
    transaction); returns the factories it replaced, for :func:`_restore`."""
    saved = {name: getattr(db, name) for name in FACTORIES}
    joined = db._factory(bind)
    joined.configure(join_transaction_mode="create_savepoint")
    for name in FACTORIES:
        setattr(db, name, joined)
    return saved


def _restore(db: DatabaseBase[Any], saved: dict[str, Any]) -> None:
    for name, factory in saved.items():
        setattr(db, name, factory)


@contextmanager
def rolled_back(db: Database) -> Iterator[Database]:
    """``db`` with every unit of work inside one transaction, rolled back at the end.
    Code that uses ``db.engine`` directly is not covered; nor is DDL on MySQL, which
    commits by itself."""
    with db.engine.connect() as connection:
        outer = connection.begin()
        saved = _rebind(db, connection)
        try:
            yield db
        finally:
            _restore(db, saved)
            if outer.is_active:
                outer.rollback()


@asynccontextmanager
async def async_rolled_back(db: AsyncDatabase) -> AsyncIterator[AsyncDatabase]:
    """The async twin of :func:`rolled_back`."""
    async with db.engine.connect() as connection:
        outer = await connection.begin()
        saved = _rebind(db, connection)
        try:
            yield db
        finally:
            _restore(db, saved)
            if outer.is_active:
                await outer.rollback()


@pytest.fixture(scope="session")
def storelayer_schema(pytestconfig: pytest.Config) -> AppSchema:
    """The application's schema: override this fixture, or set the ini option
    ``storelayer_migrations`` (a directory) or ``storelayer_models`` (``module:Base``)."""
    directory = pytestconfig.getini("storelayer_migrations")
    models = pytestconfig.getini("storelayer_models")
    if directory:
        return AppSchema(migrations=pytestconfig.rootpath / str(directory))
    if models:
        return AppSchema(metadata=_models(str(models)))
    raise pytest.UsageError(
        "migrated_database needs the application's schema: define a storelayer_schema "
        "fixture, or set storelayer_migrations or storelayer_models in the pytest config"
    )


@pytest.fixture(scope="session")
def migrated_url(
    backend: Backend, storelayer_provisioner: Provisioner, storelayer_schema: AppSchema
) -> URL:
    """A scratch database of the backend under test with the application's schema, made
    once per test session."""
    url = provision_or_skip(storelayer_provisioner, backend)
    with connect(url, backend=backend.name) as db:
        storelayer_schema.apply(db)
    return url


@pytest.fixture(scope="session")
def migrated_database(migrated_url: URL, backend: Backend) -> Iterator[Database]:
    """A ``Database`` on the application's schema, shared by the session's tests."""
    with connect(migrated_url, backend=backend.name) as db:
        yield db


@pytest.fixture
def rollback_database(migrated_database: Database) -> Iterator[Database]:
    """``migrated_database`` for one test: what the test writes is rolled back."""
    with rolled_back(migrated_database) as db:
        yield db


@pytest.fixture
def rollback_session(rollback_database: Database) -> Iterator[Session]:
    """A session in the test's outer transaction; its ``commit()`` keeps the rows
    visible to the test and they are still rolled back at the end."""
    session: Session = rollback_database._sessions()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def async_rollback_database(
    migrated_url: URL, backend: Backend
) -> Callable[[], AbstractAsyncContextManager[AsyncDatabase]]:
    """``async with async_rollback_database() as db``: an ``AsyncDatabase`` on the
    application's schema whose writes are rolled back when the block ends. Opened in
    the block, so it lives on the event loop that runs the test."""
    if not backend.async_driver:
        pytest.skip(f"backend {backend.name!r} declares no async_driver")

    @asynccontextmanager
    async def open_database() -> AsyncIterator[AsyncDatabase]:
        async with connect_async(migrated_url, backend=backend.name) as db, \
                async_rolled_back(db) as joined:
            yield joined

    return open_database
