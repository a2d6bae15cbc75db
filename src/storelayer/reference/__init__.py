"""storelayer's reference schema: the data layer of a command-line platform, and the
worked example of models, repositories and migrations on storelayer.

The core never imports this package; import it yourself::

    from storelayer.reference import User, UserRepository
"""

from storelayer.reference.base import (
    NAMING_CONVENTION,
    IntegerPKMixin,
    Model,
    ModelMixin,
    ReferenceBase,
    TimestampMixin,
    UUIDModel,
    UUIDPKMixin,
)
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
    metadata,
)
from storelayer.reference.repositories import (
    AuditRepository,
    CacheRepository,
    CommandRepository,
    ConfigurationRepository,
    IssuedToken,
    MetricAggregate,
    MetricRepository,
    ProjectRepository,
    SessionTokenRepository,
    UserRepository,
)
from storelayer.reference.types import LONG_TEXT, UTCDateTime, UtcNow, utcnow

__all__ = [
    "LONG_TEXT",
    "NAMING_CONVENTION",
    "AuditLog",
    "AuditRepository",
    "CacheEntry",
    "CacheRepository",
    "Command",
    "CommandRepository",
    "CommandStatus",
    "Configuration",
    "ConfigurationRepository",
    "IntegerPKMixin",
    "IssuedToken",
    "MetricAggregate",
    "MetricRepository",
    "MetricType",
    "Model",
    "ModelMixin",
    "PerformanceMetric",
    "Project",
    "ProjectRepository",
    "RDFSpecification",
    "ReferenceBase",
    "SessionToken",
    "SessionTokenRepository",
    "TelemetryEvent",
    "TimestampMixin",
    "UTCDateTime",
    "UUIDModel",
    "UUIDPKMixin",
    "User",
    "UserRepository",
    "UtcNow",
    "metadata",
    "utcnow",
]
