"""Domain repositories of the reference schema, each a ``Repository[Model]`` subclass
with the generic methods plus the queries of its domain::

    with db.session() as s:
        users = UserRepository(s)
        alice = users.create_user("alice", "alice@example.com", "s3cret")
"""

from storelayer.reference.repositories.audit import AuditRepository
from storelayer.reference.repositories.cache import CacheRepository
from storelayer.reference.repositories.commands import CommandRepository
from storelayer.reference.repositories.configuration import ConfigurationRepository
from storelayer.reference.repositories.metrics import MetricAggregate, MetricRepository
from storelayer.reference.repositories.projects import ProjectRepository
from storelayer.reference.repositories.tokens import IssuedToken, SessionTokenRepository
from storelayer.reference.repositories.users import UserRepository

__all__ = [
    "AuditRepository",
    "CacheRepository",
    "CommandRepository",
    "ConfigurationRepository",
    "IssuedToken",
    "MetricAggregate",
    "MetricRepository",
    "ProjectRepository",
    "SessionTokenRepository",
    "UserRepository",
]
