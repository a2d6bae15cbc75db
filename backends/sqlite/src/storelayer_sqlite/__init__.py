"""The SQLite backend of storelayer: the embedded default."""

from storelayer import BackendRegistry, hookimpl
from storelayer_sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend", "storelayer_register_backends"]


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    """Register the SQLite backend."""
    register(SQLiteBackend())
