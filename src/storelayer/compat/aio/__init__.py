"""``storelayer.compat.aio``: the API of the async "Database API" document (seed 004) on
storelayer's ``connect_async()``::

    from storelayer.compat.aio import DatabaseConfig, DatabaseConnectionManager

    manager = DatabaseConnectionManager(DatabaseConfig(url="sqlite:///app.db"))
    await manager.initialize()
    async with manager.get_session() as session:   # committed at the end
        ...
    await manager.close()

Submodules mirror the document's: ``.connection``, ``.monitoring``, ``.models``,
``.repositories``.
"""

from storelayer.compat.aio.connection import (
    DatabaseConfig,
    DatabaseConnectionManager,
    ManagedSession,
    get_connection_manager,
)
from storelayer.compat.aio.models import Base, BaseModel
from storelayer.compat.aio.monitoring import DatabaseMetrics, DatabaseMonitor, SlowQuery
from storelayer.compat.aio.repositories import BaseRepository

__all__ = [
    "Base",
    "BaseModel",
    "BaseRepository",
    "DatabaseConfig",
    "DatabaseConnectionManager",
    "DatabaseMetrics",
    "DatabaseMonitor",
    "ManagedSession",
    "SlowQuery",
    "get_connection_manager",
]
