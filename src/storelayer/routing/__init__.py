"""Read-replica routing: reads go to replicas that have replayed what they must show.

See docs/operations/replicas.md for how a read is routed. ``SyncRouting`` (here) and
``_async.AsyncRouting`` serve ``Database`` and ``AsyncDatabase``; ``fitness_problem`` is
the rule for whether a replica may serve, shared with the health report.
"""

from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._replicas import RoutingSnapshot, fitness_problem
from storelayer.routing._session import session_target, write_token
from storelayer.routing._sync import SyncRouting
from storelayer.routing._token import ConsistencyToken

__all__ = [
    "ConsistencyToken",
    "RoutingPolicy",
    "RoutingSnapshot",
    "SyncRouting",
    "fitness_problem",
    "session_target",
    "write_token",
]
