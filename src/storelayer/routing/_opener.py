"""``ReadOpener``: settle where one read unit runs, honouring a consistency token.

Takes the router's candidates in order, connects (a replica that cannot be reached is
ejected), checks that the replica replayed the token's position, waits for one a
bounded time, else falls back to the primary (or raises ``ReplicaUnavailable``).
The connection it returns is already in a transaction, which the session joins: the
session never commits it, so a replica dying after the last read costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc

from storelayer._conflicts import one_line
from storelayer.errors import ConnectionFailed, ReplicaUnavailable, StorelayerError
from storelayer.routing._stats import FALLBACK_REASONS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from storelayer.backend import Backend
    from storelayer.routing._policy import RoutingPolicy
    from storelayer.routing._router import ReplicaRouter
    from storelayer.routing._stats import RoutingStats
    from storelayer.routing._token import ConsistencyToken

log = logging.getLogger("storelayer.routing")

#: Errors that mean "this replica is unreachable or broken".
CONNECT_ERRORS = (ConnectionFailed, sa_exc.DBAPIError)


@dataclass(frozen=True)
class ReadTarget:
    """Where a read unit runs: a replica's connection, or the primary (None)."""

    name: str
    connection: Connection | None


class ReadOpener:
    """Chooses and opens the target of read units; shared by every session."""

    def __init__(
        self,
        *,
        router: ReplicaRouter,
        engines: Mapping[str, Engine],
        autocommit_engines: Mapping[str, Engine] | None = None,
        backend: Backend,
        policy: RoutingPolicy,
        max_lag: float,
        stats: RoutingStats,
        sleep: Callable[[float], object] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.engines = engines
        self.autocommit_engines = autocommit_engines or engines
        self.backend = backend
        self.policy = policy
        self.window = policy.window(max_lag)
        self.stats = stats
        self.sleep = sleep
        self.wall_clock = wall_clock

    def open(self, token: ConsistencyToken | None, *, autocommit: bool = False) -> ReadTarget:
        """The target of one read unit (see the module docstring); ``autocommit``:
        connect with the backend's autocommit read options."""
        engines = self.autocommit_engines if autocommit else self.engines
        if token is None:  # the common case, kept short
            for name in self.router.candidates():
                connection = self._connect(name, engines)
                if connection is not None:
                    connection.begin()
                    self.stats.read(name)
                    return ReadTarget(name, connection)
            return self.fallback("no_replica")
        if token.position is None and self._fresh(token):
            return self.fallback("token_window")
        return self._open_for_token(token, engines)

    def _open_for_token(self, token: ConsistencyToken, engines: Mapping[str, Engine]) -> ReadTarget:
        held: tuple[str, Connection] | None = None
        for name in self.router.candidates():
            connection = self._connect(name, engines)
            if connection is None:
                continue
            verdict = self._replayed(name, connection, token)
            if verdict == "failed":
                continue
            if verdict == "invalid":
                self._release(held)
                return self.fallback("invalid_token")
            if verdict == "yes" or (verdict == "unknown" and not self._fresh(token)):
                self._release(held)
                return self._serve(name, connection, verdict)
            if verdict == "unknown":  # the backend cannot tell and the write is recent
                self._release((name, connection))
                self._release(held)
                return self.fallback("token_window")
            if held is None:
                held = (name, connection)
            else:
                self._release((name, connection))
        if held is None:
            return self.fallback("no_replica")
        return self._wait(held, token)

    def fallback(self, reason: str, cause: BaseException | None = None) -> ReadTarget:
        """The primary, or ``ReplicaUnavailable`` when the policy forbids it."""
        self.stats.fallback(reason)
        if self.policy.fallback == "error":
            raise ReplicaUnavailable(
                f"no replica can serve this read: {FALLBACK_REASONS[reason]}; fallback is "
                "'error' (set STORELAYER_REPLICA_FALLBACK=primary to read from the primary)"
            ) from cause
        self.stats.read("primary")
        return ReadTarget("primary", None)

    # -- steps -------------------------------------------------------------------------

    def _fresh(self, token: ConsistencyToken) -> bool:
        return token.age(self.wall_clock()) < self.window

    def _connect(self, name: str, engines: Mapping[str, Engine]) -> Connection | None:
        try:
            return engines[name].connect()
        except sa_exc.TimeoutError:  # its pool is exhausted: busy, not broken
            return None
        except CONNECT_ERRORS as error:
            self.router.record_failure(name, one_line(error))
            return None

    def _replayed(self, name: str, connection: Connection, token: ConsistencyToken) -> str:
        """One of "yes", "no", "unknown" (the backend cannot tell), "invalid" (not a
        position of this backend) or "failed" (the replica broke and was ejected)."""
        if token.position is None:
            return "unknown"
        try:
            replayed = self.backend.replication.has_replayed(connection, token.position)
            connection.rollback()  # the read's snapshot starts after the check
        except ValueError:  # a position this backend never writes
            self._release((name, connection))
            return "invalid"
        except (StorelayerError, sa_exc.SQLAlchemyError) as error:
            self._release((name, connection))
            self.router.record_failure(name, one_line(error))
            return "failed"
        return {True: "yes", False: "no", None: "unknown"}[replayed]

    def _wait(self, held: tuple[str, Connection], token: ConsistencyToken) -> ReadTarget:
        name, connection = held
        deadline = time.monotonic() + self.policy.token_wait
        while time.monotonic() < deadline:
            self.sleep(min(self.policy.token_poll, max(0.0, deadline - time.monotonic())))
            verdict = self._replayed(name, connection, token)
            if verdict in ("failed", "invalid"):
                break
            if verdict == "yes":
                return self._serve(name, connection, "waited")
        else:
            self._release(held)
        self.stats.token("not_replayed")
        return self.fallback("token_not_replayed")

    def _serve(self, name: str, connection: Connection, outcome: str) -> ReadTarget:
        if connection.in_transaction():
            connection.rollback()
        connection.begin()
        # "yes": replayed; "waited": replayed after a wait; "unknown": older than the window
        self.stats.token({"yes": "replayed", "unknown": "aged"}.get(outcome, outcome))
        self.stats.read(name)
        return ReadTarget(name, connection)

    @staticmethod
    def _release(held: tuple[str, Connection] | None) -> None:
        if held is not None:
            close_quietly(held[1])


def close_quietly(connection: Connection) -> None:
    """Close a replica connection that may be dead; its errors no longer matter."""
    try:
        connection.close()
    except (StorelayerError, sa_exc.SQLAlchemyError):
        log.debug("closing a replica connection failed", exc_info=True)
