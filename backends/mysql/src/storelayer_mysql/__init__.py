"""The MySQL and MariaDB backend of storelayer (PyMySQL)."""

from storelayer import BackendRegistry, hookimpl
from storelayer_mysql.backend import MySQLBackend

__all__ = ["MySQLBackend", "storelayer_register_backends"]


@hookimpl
def storelayer_register_backends(register: BackendRegistry) -> None:
    """Register the MySQL/MariaDB backend."""
    register(MySQLBackend())
