"""``storelayer.compat.guide.models``: the guide's models are storelayer's reference
schema; ``ExecutionStatus`` is its name for ``CommandStatus``."""

from storelayer.reference.base import Model as Base
from storelayer.reference.models import (
    AuditLog,
    CacheEntry,
    Command,
    CommandStatus,
    Configuration,
    MetricType,
    PerformanceMetric,
    Project,
    RDFSpecification,
    SessionToken,
    TelemetryEvent,
    User,
)

#: The guide's name for a command's status.
ExecutionStatus = CommandStatus

__all__ = [
    "AuditLog",
    "Base",
    "CacheEntry",
    "Command",
    "CommandStatus",
    "Configuration",
    "ExecutionStatus",
    "MetricType",
    "PerformanceMetric",
    "Project",
    "RDFSpecification",
    "SessionToken",
    "TelemetryEvent",
    "User",
]
