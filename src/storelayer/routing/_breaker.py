"""``CircuitBreaker``: a failed replica is ejected for a cool-off period and comes back
only after a probe succeeds. Pure state; the caller supplies the clock and locking."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CircuitBreaker:
    """Closed (serving) or open (ejected since ``opened_at``)."""

    cooloff: float
    opened_at: float | None = None
    #: Why it opened last (one line, no password).
    reason: str | None = None

    @property
    def closed(self) -> bool:
        """Whether the replica may serve reads."""
        return self.opened_at is None

    def open(self, now: float, reason: str) -> bool:
        """Eject; True when this ejected a serving replica (not a failed probe)."""
        was_closed = self.closed
        self.opened_at = now
        self.reason = reason
        return was_closed

    def probe_due(self, now: float) -> bool:
        """Whether an ejected replica has cooled off and may be probed."""
        return self.opened_at is not None and now - self.opened_at >= self.cooloff

    def close(self) -> bool:
        """A probe succeeded: serve again. True when it was open."""
        was_open = not self.closed
        self.opened_at = None
        self.reason = None
        return was_open
