"""``ReplicaRouter``: which replicas may serve a read right now, and in which order.

Pure decisions over state the lag sampler and the sessions report: the last lag sample
of each replica, its circuit breaker, the selection strategy. No I/O happens here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storelayer.routing._breaker import CircuitBreaker
from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._stats import RoutingStats

#: Seconds a read reuses the last evaluation of which replicas are eligible (every
#: sample and every failure re-evaluates at once).
CACHE_SECONDS = 0.05


@dataclass
class ReplicaState:
    """What the router knows about one replica."""

    name: str
    breaker: CircuitBreaker
    #: Seconds behind at the last sample; None: unknown (not replicating, stopped).
    lag: float | None = None
    #: Monotonic time of the last successful sample; None: never sampled.
    sampled_at: float | None = None
    #: Monotonic time of the last sample attempt.
    attempted_at: float | None = None
    last_error: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica as ``ReplicaRouter.status()`` reports it."""

    name: str
    serving: bool
    eligible: bool
    lag: float | None
    sample_age: float | None
    ejected_reason: str | None


class ReplicaRouter:
    """Eligible replicas in selection order.

    ``lag_measured`` is the backend's ``features.replicas``: when True a replica serves
    only once a sample says it is within ``max_lag`` (an unknown lag is unhealthy); when
    False the lag is unknown by nature (SQLite) and only the circuit breaker decides.
    A sample that is overdue counts its overdue time as lag, so a stuck sampler cannot
    keep a lagging replica in use.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        policy: RoutingPolicy,
        max_lag: float,
        lag_measured: bool,
        stats: RoutingStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.max_lag = max_lag
        self.lag_measured = lag_measured
        self.stats = stats
        self.clock = clock
        self._states = {name: ReplicaState(name, CircuitBreaker(policy.cooloff)) for name in names}
        self._order = list(names)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        #: (when, eligible states): reads reuse the last evaluation for CACHE_SECONDS.
        self._cache: tuple[float, list[ReplicaState]] = (-1e18, [])

    @property
    def names(self) -> list[str]:
        """Every replica, in configuration order."""
        return list(self._order)

    # -- decisions ---------------------------------------------------------------------

    def effective_lag(self, state: ReplicaState, now: float) -> float | None:
        """The sampled lag plus however long the sample is overdue; None if unknown."""
        if state.sampled_at is None or state.lag is None:
            return None
        overdue = now - state.sampled_at - 2 * self.policy.sample_interval
        return state.lag + max(0.0, overdue)

    def _eligible(self, state: ReplicaState, now: float) -> bool:
        if not state.breaker.closed:
            return False
        if not self.lag_measured:
            return True
        lag = self.effective_lag(state, now)
        return lag is not None and lag <= self.max_lag

    def candidates(self) -> list[str]:
        """Replicas that may serve a read now, best first (round robin or least lag).

        Runs on every read, without the lock: it only reads state that reports replace
        whole (a torn read costs at most one stale decision); the eligible set is
        re-evaluated every CACHE_SECONDS and after every report."""
        now = self.clock()
        cached_at, eligible = self._cache
        if now - cached_at > CACHE_SECONDS:
            eligible = [s for s in self._states.values() if self._eligible(s, now)]
            self._cache = (now, eligible)
        if len(eligible) > 1:
            start = next(self._turn) % len(eligible)
            eligible = eligible[start:] + eligible[:start]
            if self.policy.selection == "least_lag" and self.lag_measured:
                eligible.sort(key=lambda s: self.effective_lag(s, now) or 0.0)
        return [s.name for s in eligible]

    def should_sample(self, name: str) -> bool:
        """Whether the sampler should query ``name`` now: a serving replica whose lag
        the backend measures, or an ejected one whose cool-off is over (the probe)."""
        now = self.clock()
        with self._lock:
            state = self._states[name]
            if state.breaker.closed:
                return self.lag_measured
            return state.breaker.probe_due(now)

    def has_samples(self) -> bool:
        """Whether every replica was sampled or probed once (or lag is not measured)."""
        with self._lock:
            return not self.lag_measured or all(
                s.attempted_at is not None for s in self._states.values()
            )

    def reset_locks(self) -> None:
        """New locks, in a forked child (the parent's threads are gone)."""
        self._lock = threading.Lock()
        self.stats.reset_lock()

    # -- reports -----------------------------------------------------------------------

    def record_sample(self, name: str, lag: float | None) -> None:
        """A sample (or probe) succeeded: store the lag and close the breaker."""
        now = self.clock()
        with self._lock:
            state = self._states[name]
            state.lag, state.sampled_at, state.attempted_at = lag, now, now
            state.last_error = None
            restored = state.breaker.close()
            self._cache = (-1e18, [])
        if restored:
            self.stats.restored(name)

    def record_failure(self, name: str, reason: str) -> None:
        """``name`` failed a read, a connect or a probe: eject it for the cool-off."""
        now = self.clock()
        with self._lock:
            state = self._states[name]
            state.attempted_at = now
            state.last_error = reason
            ejected = state.breaker.open(now, reason)
            self._cache = (-1e18, [])
        if ejected:
            self.stats.ejected(name)

    def status(self) -> list[ReplicaStatus]:
        """Every replica: serving or ejected, eligible, lag and sample age."""
        now = self.clock()
        with self._lock:
            return [
                ReplicaStatus(
                    name=s.name,
                    serving=s.breaker.closed,
                    eligible=self._eligible(s, now),
                    lag=s.lag,
                    sample_age=None if s.sampled_at is None else now - s.sampled_at,
                    ejected_reason=s.breaker.reason,
                )
                for s in (self._states[n] for n in self._order)
            ]
