"""Read-replica routing: reads go to replicas that have replayed what they must show.

See docs/operations/replicas.md for how a read is routed.
"""

from storelayer.routing._breaker import CircuitBreaker
from storelayer.routing._core import RoutingCore
from storelayer.routing._opener import ReadOpener, ReadTarget
from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._router import ReplicaRouter, ReplicaStatus
from storelayer.routing._sampler import AsyncSampler, ThreadSampler
from storelayer.routing._session import (
    RoutedSession,
    RoutedWriteSession,
    SessionRoute,
    session_target,
    write_token,
)
from storelayer.routing._statements import is_read_text, is_write
from storelayer.routing._stats import RoutingSnapshot, RoutingStats
from storelayer.routing._sync import RoutedFactory, SyncRouting, replica_pool_overrides
from storelayer.routing._token import ConsistencyToken, InvalidToken

__all__ = [
    "AsyncSampler",
    "CircuitBreaker",
    "ConsistencyToken",
    "InvalidToken",
    "ReadOpener",
    "ReadTarget",
    "ReplicaRouter",
    "ReplicaStatus",
    "RoutedFactory",
    "RoutedSession",
    "RoutedWriteSession",
    "RoutingCore",
    "RoutingPolicy",
    "RoutingSnapshot",
    "RoutingStats",
    "SessionRoute",
    "SyncRouting",
    "ThreadSampler",
    "is_read_text",
    "is_write",
    "replica_pool_overrides",
    "session_target",
    "write_token",
]
