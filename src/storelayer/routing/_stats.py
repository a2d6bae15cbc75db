"""``RoutingStats``: every routing decision counted, for ``db.routing_stats()``."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storelayer.routing._router import ReplicaStatus

#: Why a read did not go to a replica.
FALLBACK_REASONS = {
    "no_replica": "no replica was healthy and within the lag threshold",
    "token_not_replayed": "no replica replayed the consistency token in time",
    "token_window": "the token has no position and is younger than the time window",
    "invalid_token": "the consistency token could not be parsed",
    "replica_failed": "the replica failed during the read",
}


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
    #: Each replica now: serving or ejected, eligible, last lag, sample age.
    replicas: tuple[ReplicaStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


class RoutingStats:
    """Thread-safe counters; cheap enough to bump on every read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._ejections: Counter[str] = Counter()
        self._restores: Counter[str] = Counter()
        self._tokens: Counter[str] = Counter()

    def reset_lock(self) -> None:
        """A new lock, in a forked child."""
        self._lock = threading.Lock()

    def read(self, target: str) -> None:
        """A read unit settled on ``target``."""
        with self._lock:
            self._reads[target] += 1

    def fallback(self, reason: str) -> None:
        """A read could not use a replica because of ``reason`` (see FALLBACK_REASONS)."""
        with self._lock:
            self._fallbacks[reason] += 1

    def ejected(self, name: str) -> None:
        """Replica ``name`` was ejected."""
        with self._lock:
            self._ejections[name] += 1

    def restored(self, name: str) -> None:
        """Replica ``name`` passed its probe and serves again."""
        with self._lock:
            self._restores[name] += 1

    def token(self, outcome: str) -> None:
        """A token read ended as ``outcome`` ("replayed", "waited", "not_replayed"...)."""
        with self._lock:
            self._tokens[outcome] += 1

    def snapshot(self) -> RoutingSnapshot:
        """A consistent copy of every counter."""
        with self._lock:
            return RoutingSnapshot(
                dict(self._reads),
                dict(self._fallbacks),
                dict(self._ejections),
                dict(self._restores),
                dict(self._tokens),
            )
