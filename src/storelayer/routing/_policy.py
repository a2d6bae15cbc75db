"""``RoutingPolicy``: how reads are routed among replicas, from ``STORELAYER_*`` variables
or keyword arguments. Pure: reading it connects nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from storelayer.errors import ConfigurationError

#: Replica selection strategies.
SELECTIONS = ("round_robin", "least_lag")
#: What a read does when no replica can serve it.
FALLBACKS = ("primary", "error")

_ENVIRONMENT: Mapping[str, tuple[str, type]] = {
    "selection": ("STORELAYER_REPLICA_SELECTION", str),
    "automatic": ("STORELAYER_AUTO_ROUTING", bool),
    "fallback": ("STORELAYER_REPLICA_FALLBACK", str),
    "token_wait": ("STORELAYER_REPLICA_TOKEN_WAIT", float),
    "sample_interval": ("STORELAYER_REPLICA_SAMPLE_INTERVAL", float),
    "cooloff": ("STORELAYER_REPLICA_COOLOFF", float),
    "time_window": ("STORELAYER_READ_YOUR_WRITES_WINDOW", float),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RoutingPolicy:
    """Knobs of read routing; every one has a default that suits a web application.

    The lag threshold itself is ``Settings.max_replica_lag`` (``STORELAYER_MAX_REPLICA_LAG``).
    """

    #: "round_robin" spreads reads evenly; "least_lag" prefers the freshest replica.
    selection: str = "round_robin"
    #: Opt-in: ``db.session()`` reads from a replica until its first write.
    automatic: bool = False
    #: "primary": a read no replica can serve goes to the primary; "error": it raises
    #: ``ReplicaUnavailable``.
    fallback: str = "primary"
    #: Seconds a read with a consistency token waits for a replica to replay it before
    #: it goes to the primary.
    token_wait: float = 0.05
    #: Seconds between two polls of a replica while waiting for a token.
    token_poll: float = 0.005
    #: Seconds between two lag samples of a replica.
    sample_interval: float = 1.0
    #: Seconds a failed replica stays ejected before a probe may bring it back.
    cooloff: float = 5.0
    #: Seconds after a write during which a token without a position (a backend that
    #: reports none) sends reads to the primary; None: ``max_replica_lag``.
    time_window: float | None = None
    #: Seconds the first routed read waits for the first lag samples.
    first_sample_wait: float = 2.0

    def __post_init__(self) -> None:
        for name, allowed in (("selection", SELECTIONS), ("fallback", FALLBACKS)):
            if getattr(self, name) not in allowed:
                raise ConfigurationError(
                    f"replica {name} must be one of {', '.join(allowed)}; got "
                    f"{getattr(self, name)!r} ({_ENVIRONMENT[name][0]})"
                )
        for name in ("token_wait", "token_poll", "cooloff", "first_sample_wait", "time_window"):
            if (getattr(self, name) or 0) < 0:
                raise ConfigurationError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.sample_interval <= 0:
            raise ConfigurationError(f"sample_interval must be > 0, got {self.sample_interval}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RoutingPolicy:
        """The policy from ``STORELAYER_*`` variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, kind) in _ENVIRONMENT.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[name] = _parse(variable, raw, kind)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(
                f"unknown routing option(s): {', '.join(sorted(unknown))}; valid: "
                f"{', '.join(sorted(known))}"
            )
        values.update(overrides)
        return cls(**values)

    def with_options(self, **changes: Any) -> RoutingPolicy:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def window(self, max_replica_lag: float) -> float:
        """Seconds a position-less token keeps reads on the primary."""
        return max_replica_lag if self.time_window is None else self.time_window


def _parse(variable: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigurationError(f"{variable} must be one of 1/0, true/false, yes/no, on/off")
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(f"{variable} must be a number, got {raw!r}") from None
    return raw.strip().lower().replace("-", "_")
