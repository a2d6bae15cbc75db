"""The routing policy of the SQLite routing tests (sync and async), and a way to age
read-your-writes tokens without sleeping."""

from __future__ import annotations

import time
from typing import Any

from storelayer.routing import RoutingPolicy

#: The read-your-writes window without positions: long, so that no loaded machine
#: outlasts it by accident; the tests move the routing's wall clock past it instead.
WINDOW = 30.0
FAST = RoutingPolicy(sample_interval=0.02, cooloff=0.1, token_wait=0.01, time_window=WINDOW)


def age_tokens(db: Any, seconds: float) -> None:
    """Move ``db``'s routing wall clock on by ``seconds``: tokens written before age at
    once (the clock tokens are stamped and judged with)."""
    db._routing.replicas.wall_clock = lambda: time.time() + seconds
