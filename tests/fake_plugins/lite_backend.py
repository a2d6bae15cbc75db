"""A third-party backend that lives outside src/: scheme ``lite`` served by SQLite's
dialect. The core has never heard of it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from storelayer import Backend, BackendRegistry, Features, hookimpl


class LiteBackend(Backend):
    name = "lite"
    schemes = ("lite",)
    dialect = "sqlite"
    default_driver = "pysqlite"
    features = Features(server=False, upsert=False)

    def embedded_test_url(self, directory: Path, name: str) -> URL:
        return URL.create("lite", database=str(directory / f"{name}.db"))


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    register(LiteBackend())
