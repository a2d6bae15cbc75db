"""The PostgreSQL backend of storelayer (psycopg2)."""

from storelayer import BackendRegistry, hookimpl
from storelayer_postgresql.backend import PostgreSQLBackend

__all__ = ["PostgreSQLBackend", "storelayer_register_backends"]


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    """Register the PostgreSQL backend."""
    register(PostgreSQLBackend())
