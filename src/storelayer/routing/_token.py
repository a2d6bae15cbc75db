"""Consistency tokens: the position a commit wrote, as a short cookie-safe string.

``sl1.<written_at in ms>.<position, percent-encoded>``: the position is what the backend's
``write_position()`` returned (a PostgreSQL WAL LSN, a MariaDB GTID list...), empty when
the backend reports none; ``written_at`` (wall clock, so that it means the same in
another process) serves the time-window fallback. Tokens come back from cookies and job
payloads, so parsing treats them as untrusted input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

PREFIX = "sl1"
#: Longest token accepted (a MySQL GTID set of many servers stays far below).
MAX_LENGTH = 2048
_POSITION_SAFE = "/-_~:"
_WHOLE = re.compile(r"^sl1\.(?P<ms>\d{1,16})\.(?P<position>[A-Za-z0-9%/_~:-]*)$")


class InvalidToken(ValueError):
    """A consistency token that this version of storelayer did not write."""


@dataclass(frozen=True)
class ConsistencyToken:
    """What a commit wrote: ``position`` (None when the backend reports none) and when."""

    position: str | None
    written_at: float

    def encode(self) -> str:
        """The token as text: ASCII letters, digits and ``. % / _ ~ : -`` only."""
        position = quote(self.position, safe=_POSITION_SAFE) if self.position else ""
        return f"{PREFIX}.{round(self.written_at * 1000)}.{position}"

    def __str__(self) -> str:
        return self.encode()

    @classmethod
    def parse(cls, text: str) -> ConsistencyToken:
        """The token ``encode()`` wrote; ``InvalidToken`` for anything else."""
        if not isinstance(text, str) or len(text) > MAX_LENGTH:
            raise InvalidToken("not a storelayer consistency token (wrong type or too long)")
        match = _WHOLE.match(text.strip())
        if match is None:
            raise InvalidToken(f"not a storelayer consistency token: {text[:60]!r}")
        position = unquote(match["position"]) or None
        if position is not None and not position.isprintable():
            raise InvalidToken("consistency token position holds unprintable characters")
        return cls(position=position, written_at=int(match["ms"]) / 1000)

    def age(self, now: float) -> float:
        """Seconds since the write, at wall-clock time ``now`` (never negative)."""
        return max(0.0, now - self.written_at)


def as_token(token: str | ConsistencyToken | None) -> ConsistencyToken | None:
    """Accept a token as text or object; None stays None."""
    if token is None or isinstance(token, ConsistencyToken):
        return token
    return ConsistencyToken.parse(token)
