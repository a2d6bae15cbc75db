"""``storelayer.compat.guide``: the API of the "Database Layer Guide" (seed 000) on
storelayer. Module-level functions work on a default database opened by ``init_db()``
(else ``DATABASE_URL``)::

    from storelayer.compat.guide import init_db, get_session, UserRepository

    init_db("sqlite:///./specify.db")
    with get_session() as session:
        user = UserRepository(session).create_user(
            username="alice", email="alice@example.com", password_hash=b"..."
        )

Submodules mirror the guide's: ``.session`` (``DatabaseManager``, ``RetryConfig``),
``.queries`` (``UserQueries``...), ``.migrations`` (``MigrationManager``,
``verify_schema``, ``backup_database``...), ``.models``, ``.repositories``.
"""

from storelayer.compat.guide.models import (
    AuditLog,
    CacheEntry,
    Command,
    Configuration,
    ExecutionStatus,
    MetricType,
    PerformanceMetric,
    Project,
    RDFSpecification,
    SessionToken,
    TelemetryEvent,
    User,
)
from storelayer.compat.guide.repositories import (
    AuditRepository,
    CacheRepository,
    CommandRepository,
    ConfigurationRepository,
    MetricRepository,
    ProjectRepository,
    SessionTokenRepository,
    UserRepository,
)
from storelayer.compat.guide.session import (
    DatabaseManager,
    RetryConfig,
    close_db,
    get_engine,
    get_session,
    get_session_factory,
    health_check,
    init_db,
)

__all__ = [
    "AuditLog",
    "AuditRepository",
    "CacheEntry",
    "CacheRepository",
    "Command",
    "CommandRepository",
    "Configuration",
    "ConfigurationRepository",
    "DatabaseManager",
    "ExecutionStatus",
    "MetricRepository",
    "MetricType",
    "PerformanceMetric",
    "Project",
    "ProjectRepository",
    "RDFSpecification",
    "RetryConfig",
    "SessionToken",
    "SessionTokenRepository",
    "TelemetryEvent",
    "User",
    "UserRepository",
    "close_db",
    "get_engine",
    "get_session",
    "get_session_factory",
    "health_check",
    "init_db",
]
