"""``RoutingCore``: the routing state one database shares between its sessions (router,
opener, counters, last write token), for the sync and the async database alike."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING

from storelayer.errors import ConfigurationError
from storelayer.routing._opener import ReadOpener
from storelayer.routing._router import ReplicaRouter
from storelayer.routing._session import MODES, SessionRoute
from storelayer.routing._stats import RoutingSnapshot, RoutingStats
from storelayer.routing._token import ConsistencyToken, InvalidToken, as_token

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Backend
    from storelayer.routing._policy import RoutingPolicy

log = logging.getLogger("storelayer.routing")

#: Values of ``using=``.
USING = ("primary", "replica", "auto")


class RoutingCore:
    """Decisions and counters of one database's read routing."""

    def __init__(
        self,
        *,
        read_engines: Mapping[str, Engine],
        autocommit_engines: Mapping[str, Engine] | None = None,
        backend: Backend,
        policy: RoutingPolicy,
        max_lag: float,
        sleep: Callable[[float], object] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.wall_clock = wall_clock
        self.stats = RoutingStats()
        self.router = ReplicaRouter(
            list(read_engines),
            policy=policy,
            max_lag=max_lag,
            lag_measured=backend.features.replicas,
            stats=self.stats,
        )
        self.opener = ReadOpener(
            router=self.router,
            engines=read_engines,
            autocommit_engines=autocommit_engines,
            backend=backend,
            policy=policy,
            max_lag=max_lag,
            stats=self.stats,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        self._last: ContextVar[str | None] = ContextVar(
            f"storelayer_last_write_token_{id(self)}", default=None
        )

    def mode(self, using: str | None, *, read: bool) -> str:
        """The route mode of a unit of work: ``read_session()`` (``read``) or
        ``session()``, with ``using`` overriding the policy."""
        if using is not None and using not in USING:
            raise ConfigurationError(
                f"using={using!r} is not a routing target; use one of {', '.join(USING)}"
            )
        if using == "primary":
            return "primary"
        if read or using == "replica":
            return "read"
        if using == "auto" or self.policy.automatic:
            return "auto"
        return "primary"

    def route(
        self,
        mode: str,
        primary: Engine,
        token: str | ConsistencyToken | None,
        *,
        autocommit: bool = False,
    ) -> SessionRoute:
        """A new session's route; an unreadable token pins the reads to the primary."""
        assert mode in MODES
        if mode == "primary":
            return SessionRoute(self, mode, primary, None)
        try:
            parsed = as_token(token)
        except InvalidToken as error:
            log.warning("ignoring consistency token, reading from the primary: %s", error)
            self.stats.fallback("invalid_token")
            self.stats.read("primary")
            return SessionRoute(self, mode, primary, None, pinned=True)
        return SessionRoute(self, mode, primary, parsed, autocommit=autocommit)

    def snapshot(self) -> RoutingSnapshot:
        """The counters and the state of each replica."""
        return replace(self.stats.snapshot(), replicas=tuple(self.router.status()))

    def remember(self, token: str) -> None:
        """The token of the last commit in this thread or asyncio task."""
        self._last.set(token)

    def last_write_token(self) -> str | None:
        """The token of the last commit that wrote, in this thread or asyncio task."""
        return self._last.get()
