"""Read-replica routing: reads go to replicas that have replayed what they must show.

See docs/operations/replicas.md for how a read is routed. ``SyncRouting`` serves
``Database``; its twin ``storelayer.aio._routing.AsyncRouting`` serves ``AsyncDatabase``.
"""

from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._replicas import RoutingSnapshot
from storelayer.routing._session import session_target, write_token
from storelayer.routing._sync import SyncRouting
from storelayer.routing._token import ConsistencyToken

__all__ = [
    "ConsistencyToken",
    "RoutingPolicy",
    "RoutingSnapshot",
    "SyncRouting",
    "session_target",
    "write_token",
]
