"""``ReplicaSet``: the replicas of one database as routing sees them, judged by the one
rule for whether an engine may serve (``storelayer.health.fitness_problem``, which the
health report applies to what its probes measure).

It keeps each replica's last lag sample and circuit breaker (a failed replica is ejected
for ``cooloff`` seconds and serves again only after a probe succeeds), orders the fit
ones for a read (round robin or least lag), opens a read on one that replayed the read's
consistency token (waiting for one a bounded time, else falling back to the primary or
raising ``ReplicaUnavailable``) and counts every decision. The connection a read gets is
already in a transaction, which the session joins but never commits: a replica dying
after the last read costs nothing. The samples come from the front's sampler
(``_sync``, ``_async``); reads never wait for one.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from storelayer._conflicts import one_line
from storelayer.errors import ConnectionFailed, ReplicaUnavailable, StorelayerError
from storelayer.health import fitness_problem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from storelayer.backend import Backend
    from storelayer.routing._policy import RoutingPolicy
    from storelayer.routing._token import ConsistencyToken

log = logging.getLogger("storelayer.routing")

#: Why a read did not go to a replica.
FALLBACK_REASONS = {
    "no_replica": "no replica was healthy and within the lag threshold",
    "token_not_replayed": "no replica replayed the consistency token in time",
    "token_window": "the token has no position and is younger than the time window",
    "invalid_token": "the consistency token could not be parsed",
    "replica_failed": "the replica failed during the read",
}
#: Why a promoted replica was ejected.
PROMOTED = "the replica is a primary now (promoted): its connections were closed"


class ReplicaPromoted(StorelayerError):
    """A replica's server takes writes: it was promoted in a failover."""


#: The counters of ``RoutingSnapshot``.
COUNTERS = ("reads", "fallbacks", "ejections", "restores", "tokens")
#: Errors that mean "this replica is unreachable or broken".
CONNECT_ERRORS = (ConnectionFailed, sa_exc.DBAPIError)
#: Seconds a read reuses the last evaluation of which replicas are fit (every sample
#: and every failure re-evaluates at once).
CACHE_SECONDS = 0.05
_NEVER = -1e18
#: Where a read unit runs: a replica's name and connection, or ("primary", None).
Target = tuple[str, "Connection | None"]


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica now: serving (not ejected), eligible (fit), last lag, sample age."""

    name: str
    serving: bool
    eligible: bool
    lag: float | None
    sample_age: float | None
    ejected_reason: str | None


@dataclass(frozen=True)
class RoutingSnapshot:
    """Counters at one moment. ``reads``: read units per target ("primary",
    "replica:0"...); ``fallbacks``: reads that could not use a replica, by reason;
    ``ejections`` and ``restores`` per replica; ``tokens``: outcomes of token reads;
    ``replicas``: the state of each replica."""

    reads: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    ejections: dict[str, int] = field(default_factory=dict)
    restores: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    replicas: tuple[ReplicaStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass
class _Replica:
    name: str
    #: Seconds behind at the last sample; None: unknown (not replicating, stopped).
    lag: float | None = None
    #: Monotonic times of the last successful sample and of the last attempt.
    sampled_at: float | None = None
    attempted_at: float | None = None
    #: The circuit breaker: why it was ejected (one line, no password), and when;
    #: None: serving.
    reason: str | None = None
    ejected_at: float = 0.0


class ReplicaSet:
    """The replicas of one database: fitness, order, breakers, reads and counters.

    A sample that is overdue counts its overdue time as lag, so a stuck sampler cannot
    keep a lagging replica in use. Thread-safe: samplers report from their own threads.
    """

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read_engines = read_engines
        self.autocommit_engines = autocommit_engines or read_engines
        self.backend, self.policy, self.max_lag = backend, policy, max_lag
        self.lag_measured = backend.features.replicas
        self.window = policy.window(max_lag)
        self.sleep, self.wall_clock, self.clock = sleep, wall_clock, clock
        self._replicas = {name: _Replica(name) for name in read_engines}
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {counter: Counter() for counter in COUNTERS}
        #: (when, fit replicas): reads reuse the last evaluation for CACHE_SECONDS.
        self._fit: tuple[float, list[_Replica]] = (_NEVER, [])
        #: The token of the last commit that wrote, in this thread or asyncio task.
        self.last_token: ContextVar[str | None] = ContextVar(
            f"storelayer_last_write_token_{id(self)}", default=None
        )

    # -- fitness and order -------------------------------------------------------------

    def effective_lag(self, replica: _Replica, now: float) -> float | None:
        """The sampled lag plus however long the sample is overdue; None if unknown."""
        if replica.sampled_at is None or replica.lag is None:
            return None
        overdue = now - replica.sampled_at - 2 * self.policy.sample_interval
        return replica.lag + max(0.0, overdue)

    def problem(self, replica: _Replica, now: float) -> str | None:
        """``fitness_problem`` of ``replica`` from its breaker and last sample."""
        return fitness_problem(
            replica.name,
            unreachable=replica.reason,
            lag=self.effective_lag(replica, now),
            max_lag=self.max_lag,
            lag_measured=self.lag_measured,
        )

    def candidates(self) -> list[str]:
        """Replicas fit to serve a read now, best first (round robin or least lag).

        Runs on every read, without the lock: it only reads state that reports replace
        whole (a torn read costs at most one stale decision)."""
        now = self.clock()
        cached_at, fit = self._fit
        if now - cached_at > CACHE_SECONDS:
            fit = [r for r in self._replicas.values() if self.problem(r, now) is None]
            self._fit = (now, fit)
        if len(fit) > 1:
            start = next(self._turn) % len(fit)
            fit = fit[start:] + fit[:start]
            if self.policy.selection == "least_lag" and self.lag_measured:
                fit.sort(key=lambda r: self.effective_lag(r, now) or 0.0)
        return [r.name for r in fit]

    # -- samples and failures ----------------------------------------------------------

    def measure(self, connection: Connection) -> float | None:
        """Sample (or probe) a replica on ``connection``: its lag, None if unknown. A
        replica found promoted (a primary now) loses its pooled connections, all on
        that server, and fails the sample: ejected, it is probed again after the
        cool-off on a new connection, which a URL choosing a standby (libpq's
        ``target_session_attrs=standby``) sends to whichever server is one by then."""
        if not self.lag_measured:
            connection.execute(text("SELECT 1"))
            return None
        lag = self.backend.replication.lag(connection)
        if lag is None and self.backend.replication.is_primary(connection):
            connection.invalidate()
            connection.engine.dispose()
            raise ReplicaPromoted(PROMOTED)
        return lag

    def should_sample(self, name: str) -> bool:
        """Whether to query ``name`` now: a serving replica whose lag the backend
        measures, or an ejected one whose cool-off is over (the probe)."""
        with self._lock:
            replica = self._replicas[name]
            if replica.reason is None:
                return self.lag_measured
            return self.clock() - replica.ejected_at >= self.policy.cooloff

    def has_samples(self) -> bool:
        """Whether every replica was sampled or probed once (or lag is not measured)."""
        with self._lock:
            return not self.lag_measured or all(
                r.attempted_at is not None for r in self._replicas.values()
            )

    def record_sample(self, name: str, lag: float | None) -> None:
        """A sample (or probe) succeeded: store the lag, serve again if ejected."""
        now = self.clock()
        with self._lock:
            replica = self._replicas[name]
            restored = replica.reason is not None
            replica.lag, replica.sampled_at, replica.attempted_at = lag, now, now
            replica.reason, self._fit = None, (_NEVER, [])
        if restored:
            self.count("restores", name)

    def record_failure(self, name: str, reason: str) -> None:
        """``name`` failed a read, a connect or a probe: eject it for the cool-off."""
        now = self.clock()
        with self._lock:
            replica = self._replicas[name]
            ejected = replica.reason is None  # not a failed probe of an ejected one
            replica.attempted_at = replica.ejected_at = now
            replica.reason, self._fit = reason, (_NEVER, [])
        if ejected:
            self.count("ejections", name)

    def reset_locks(self) -> None:
        """A new lock, in a forked child (the parent's threads are gone)."""
        self._lock = threading.Lock()

    # -- counters and state ------------------------------------------------------------

    def count(self, counter: str, key: str) -> None:
        """One more ``key`` in ``counter`` (one of COUNTERS)."""
        with self._lock:
            self._counts[counter][key] += 1

    def status(self) -> list[ReplicaStatus]:
        """Every replica: serving or ejected, eligible, lag and sample age."""
        now = self.clock()
        with self._lock:
            return [
                ReplicaStatus(
                    r.name,
                    r.reason is None,
                    self.problem(r, now) is None,
                    r.lag,
                    None if r.sampled_at is None else now - r.sampled_at,
                    r.reason,
                )
                for r in self._replicas.values()
            ]

    def snapshot(self) -> RoutingSnapshot:
        """Every counter and the state of each replica."""
        with self._lock:
            reads, fallbacks, ejections, restores, tokens = (
                dict(self._counts[counter]) for counter in COUNTERS
            )
        return RoutingSnapshot(reads, fallbacks, ejections, restores, tokens, tuple(self.status()))

    # -- opening a read ----------------------------------------------------------------

    def open(self, token: ConsistencyToken | None, *, autocommit: bool = False) -> Target:
        """Where one read unit runs (``Target``); ``autocommit``: connect with the
        backend's autocommit read options."""
        engines = self.autocommit_engines if autocommit else self.read_engines
        if token is None:  # the common case, kept short
            for name in self.candidates():
                connection = self._connect(name, engines)
                if connection is not None and self._begun(name, connection):
                    self.count("reads", name)
                    return name, connection
            return self.fallback("no_replica")
        if token.position is None and self._fresh(token):
            return self.fallback("token_window")
        return self._open_for_token(token, engines)

    def fallback(self, reason: str, cause: BaseException | None = None) -> Target:
        """The primary, or ``ReplicaUnavailable`` when the policy forbids it."""
        self.count("fallbacks", reason)
        if self.policy.fallback == "error":
            raise ReplicaUnavailable(
                f"no replica can serve this read: {FALLBACK_REASONS[reason]}; fallback is "
                "'error' (set STORELAYER_REPLICA_FALLBACK=primary to read from the primary)"
            ) from cause
        self.count("reads", "primary")
        return "primary", None

    def _open_for_token(self, token: ConsistencyToken, engines: Mapping[str, Engine]) -> Target:
        held: tuple[str, Connection] | None = None
        for name in self.candidates():
            connection = self._connect(name, engines)
            if connection is None:
                continue
            verdict = self._replayed(name, connection, token)
            if verdict == "failed":
                continue
            if verdict == "invalid":
                _release(held)
                return self.fallback("invalid_token")
            if verdict == "yes" or (verdict == "unknown" and not self._fresh(token)):
                _release(held)
                return self._serve(name, connection, verdict)
            if verdict == "unknown":  # the backend cannot tell and the write is recent
                _release((name, connection))
                _release(held)
                return self.fallback("token_window")
            if held is None:
                held = (name, connection)
            else:
                _release((name, connection))
        if held is None:
            return self.fallback("no_replica")
        return self._wait(held, token)

    def _fresh(self, token: ConsistencyToken) -> bool:
        return token.age(self.wall_clock()) < self.window

    def _connect(self, name: str, engines: Mapping[str, Engine]) -> Connection | None:
        try:
            return engines[name].connect()
        except sa_exc.TimeoutError:  # its pool is exhausted: busy, not broken
            return None
        except CONNECT_ERRORS as error:
            self.record_failure(name, one_line(error))
            return None

    def _begun(self, name: str, connection: Connection) -> bool:
        """Whether the read's transaction began on replica ``name``; False (the replica
        ejected, the connection closed) when the server was lost in between - the BEGIN's
        set-up (the read-only switch) is its first use of the connection."""
        try:
            connection.begin()
        except CONNECT_ERRORS as error:
            close_quietly(connection)
            self.record_failure(name, one_line(error))
            return False
        return True

    def _replayed(self, name: str, connection: Connection, token: ConsistencyToken) -> str:
        """One of "yes", "no", "unknown" (the backend cannot tell), "invalid" (not a
        position of this backend) or "failed" (the replica broke and was ejected)."""
        if token.position is None:
            return "unknown"
        try:
            replayed = self.backend.replication.has_replayed(connection, token.position)
            connection.rollback()  # the read's snapshot starts after the check
        except ValueError:  # a position this backend never writes
            _release((name, connection))
            return "invalid"
        except (StorelayerError, sa_exc.SQLAlchemyError) as error:
            _release((name, connection))
            self.record_failure(name, one_line(error))
            return "failed"
        return {True: "yes", False: "no", None: "unknown"}[replayed]

    def _wait(self, held: tuple[str, Connection], token: ConsistencyToken) -> Target:
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
            _release(held)
        self.count("tokens", "not_replayed")
        return self.fallback("token_not_replayed")

    def _serve(self, name: str, connection: Connection, outcome: str) -> Target:
        if connection.in_transaction():
            connection.rollback()
        connection.begin()
        # "yes": replayed; "waited": replayed after a wait; "unknown": older than the window
        self.count("tokens", {"yes": "replayed", "unknown": "aged"}.get(outcome, outcome))
        self.count("reads", name)
        return name, connection


def _release(held: tuple[str, Connection] | None) -> None:
    if held is not None:
        close_quietly(held[1])


def close_quietly(connection: Connection) -> None:
    """Close a replica connection that may be dead; its errors no longer matter."""
    try:
        connection.close()
    except (StorelayerError, sa_exc.SQLAlchemyError):
        log.debug("closing a replica connection failed", exc_info=True)
