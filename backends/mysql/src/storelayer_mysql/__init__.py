"""The MySQL and MariaDB backend of storelayer (PyMySQL)."""

from typing import Any

from storelayer import BackendRegistry, hookimpl
from storelayer_mysql.backend import MySQLBackend
from storelayer_mysql.transactions import no_markers_on

__all__ = ["MySQLBackend", "storelayer_engine_created", "storelayer_register_backends"]


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    """Register the MySQL/MariaDB backend."""
    register(MySQLBackend())


@hookimpl
def storelayer_engine_created(engine: Any, backend: Any, role: str) -> None:
    """A replica's engine never creates nor writes commit markers."""
    if role == "replica" and isinstance(backend, MySQLBackend):
        no_markers_on(engine)
