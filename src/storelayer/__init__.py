"""storelayer: one repository API over SQLite, PostgreSQL, MySQL and plugin backends.

The core is layered, each layer importing only from those below it (checked by
import-linter; docs/architecture.md): cli, testing > migrations > reference > aio >
database > routing > session > repository > backup > _core (engines, metrics, health,
errors of a unit of work, retries: shared by the sync and async APIs) > health, metrics >
_engines > pool, retries, conflicts > plugins > registry, hookspecs > backend > config >
errors. This package only re-exports the public names; only cli and testing import it.
"""

from storelayer._markers import hookimpl, hookspec
from storelayer._retry import RetryPolicy
from storelayer.aio import AsyncDatabase, AsyncRepository, AsyncSession, connect_async
from storelayer.backend import Backend, Features
from storelayer.config import Settings, mask_url
from storelayer.database import Database, connect
from storelayer.errors import (
    BackendNotFound,
    BackupError,
    CommitOutcomeUnknown,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    InvalidValue,
    NotFound,
    PluginError,
    PoolExhausted,
    QueryError,
    ReadOnlyDatabase,
    ReadOnlySession,
    ReplicaUnavailable,
    StatementTimeout,
    StorelayerError,
    TransientError,
)
from storelayer.health import HealthReport
from storelayer.plugins import PluginManager, get_plugin_manager
from storelayer.registry import BackendRegistry
from storelayer.repository import KeysetPage, Page, Repository
from storelayer.session import Session

__version__ = "0.1.0"

__all__ = [
    "AsyncDatabase",
    "AsyncRepository",
    "AsyncSession",
    "Backend",
    "BackendNotFound",
    "BackendRegistry",
    "BackupError",
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Database",
    "Features",
    "HealthReport",
    "InvalidValue",
    "KeysetPage",
    "NotFound",
    "Page",
    "PluginError",
    "PluginManager",
    "PoolExhausted",
    "QueryError",
    "ReadOnlyDatabase",
    "ReadOnlySession",
    "ReplicaUnavailable",
    "Repository",
    "RetryPolicy",
    "Session",
    "Settings",
    "StatementTimeout",
    "StorelayerError",
    "TransientError",
    "__version__",
    "connect",
    "connect_async",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "mask_url",
]
