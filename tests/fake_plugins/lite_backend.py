"""A third-party backend that lives outside src/: scheme ``lite`` served by SQLite's
dialect. The core has never heard of it. It is the smallest backend that passes the
exported conformance suite (tests/test_conformance.py): its flags say what it lacks."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from storelayer import Backend, BackendRegistry, Features, hookimpl
from storelayer.backend import Provisioning


class LiteProvisioning(Provisioning):
    def embedded_test_url(self, directory: Path, name: str) -> URL:
        return URL.create("lite", database=str(directory / f"{name}.db"))


class LiteBackend(Backend):
    name = "lite"
    schemes = ("lite",)
    dialect = "sqlite"
    default_driver = "pysqlite"
    async_driver = "aiosqlite"
    # SQLite as its driver opens it: foreign keys off, errors that name columns only as
    # text, no write lock taken before a unit of work reads, and no savepoint at the
    # start of a transaction (the driver begins one only before a data change, so the
    # RELEASE of a first SAVEPOINT commits).
    features = Features(
        server=False,
        foreign_keys=False,
        constraint_names=False,
        row_locks=False,
        savepoints=False,
    )
    provisioning = LiteProvisioning()


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    register(LiteBackend())
