"""storelayer: one repository API over SQLite, PostgreSQL, MySQL and plugin backends."""

from storelayer._markers import hookimpl, hookspec
from storelayer.backend import Backend, Features
from storelayer.config import Settings, mask_url
from storelayer.database import Database, HealthReport, connect
from storelayer.errors import (
    BackendNotFound,
    BackupError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    NotFound,
    PluginError,
    QueryError,
    ReplicaUnavailable,
    StorelayerError,
    TransientError,
)
from storelayer.plugins import PluginManager, get_plugin_manager
from storelayer.registry import BackendRegistry
from storelayer.session import Session

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendNotFound",
    "BackendRegistry",
    "BackupError",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Database",
    "Features",
    "HealthReport",
    "NotFound",
    "PluginError",
    "PluginManager",
    "QueryError",
    "ReplicaUnavailable",
    "Session",
    "Settings",
    "StorelayerError",
    "TransientError",
    "__version__",
    "connect",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "mask_url",
]
