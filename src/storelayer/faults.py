"""Fault injection: make a database fail on purpose, so that an application can test
its own retry paths without a misbehaving server.

::

    from storelayer.faults import inject_transient_errors

    with inject_transient_errors(db, times=2) as faults:
        db.run_in_transaction(place_order)       # fails twice, then succeeds
    assert faults.raised == 2

``at`` chooses where the error strikes:

``"statement"``
    before a statement is sent (like a deadlock or a serialization failure);
``"commit"``
    instead of COMMIT, as if the server refused it and rolled the transaction back
    (a serialization failure at COMMIT): a safe retry;
``"commit_lost"``
    after COMMIT succeeded on the server, as if the connection died before the answer
    came back: the unit of work raises ``CommitOutcomeUnknown`` unless it was marked
    ``idempotent=True``, in which case it is retried although its work is committed
    (a backend with ``features.commit_outcome`` asks the server instead, finds the
    unit committed and returns normally).

Injected errors are ``StorelayerError`` subclasses the retry logic treats as transient;
they never reach the server. Use this in tests only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from storelayer.errors import StorelayerError

#: Where an injected error can strike.
PLACES = ("statement", "commit", "commit_lost")


class InjectedFault(StorelayerError):
    """A transient error raised on purpose by :func:`inject_transient_errors`."""

    #: Retrying the unit of work may succeed.
    transient = True
    #: The connection counts as lost.
    disconnect = False


class InjectedDisconnect(InjectedFault):
    """An injected loss of the connection (after COMMIT reached the server)."""

    disconnect = True


class FaultInjector:
    """Raises an injected error on the first ``times`` matching events."""

    def __init__(self, times: int, at: str, match: str | None) -> None:
        if at not in PLACES:
            raise ValueError(f"at must be one of {', '.join(PLACES)}; got {at!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise ValueError(f"times must be a whole number >= 0, got {times!r}")
        self.times = times
        self.at = at
        self.match = match.lower() if match else None
        self.raised = 0
        self._lock = threading.Lock()

    def _take(self) -> bool:
        with self._lock:
            if self.raised >= self.times:
                return False
            self.raised += 1
            return True

    def before_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """``before_cursor_execute``: fail a matching statement."""
        if self.match is not None and self.match not in statement.lower():
            return
        if self._take():
            raise InjectedFault(
                f"injected transient error {self.raised}/{self.times} before: "
                f"{' '.join(statement.split())[:80]}"
            )

    def on_commit(self, conn: Any) -> None:
        """``commit``: fail before COMMIT, or commit and then report a lost connection."""
        if not self._take():
            return
        if self.at == "commit":
            # Like a serialization failure at COMMIT: the server rolled the work back.
            conn.connection.dbapi_connection.rollback()
            raise InjectedFault(f"injected transient error {self.raised}/{self.times} at COMMIT")
        conn.connection.dbapi_connection.commit()
        raise InjectedDisconnect(
            f"injected connection loss {self.raised}/{self.times}: COMMIT reached the "
            "server but its answer was lost"
        )

    def listeners(self) -> list[tuple[str, Any]]:
        """The engine events to listen to."""
        if self.at == "statement":
            return [("before_cursor_execute", self.before_statement)]
        return [("commit", self.on_commit)]


def engines_of(target: Any) -> list[Engine]:
    """The synchronous engines behind a ``Database``, an ``AsyncDatabase`` or an engine."""
    if isinstance(target, Engine):
        return [target]
    getter = getattr(target, "engines", None)
    found = list(getter().values()) if callable(getter) else [target.engine]
    return [getattr(e, "sync_engine", e) for e in found]


@contextmanager
def inject_transient_errors(
    target: Any, *, times: int = 1, at: str = "statement", match: str | None = None
) -> Iterator[FaultInjector]:
    """Within the block, the first ``times`` matching events on ``target``'s engines
    raise an injected transient error. ``match`` limits ``at="statement"`` to
    statements containing that text (case-insensitive)."""
    injector = FaultInjector(times, at, match)
    attached = [(e, name, fn) for e in engines_of(target) for name, fn in injector.listeners()]
    for engine, name, fn in attached:
        event.listen(engine, name, fn)
    try:
        yield injector
    finally:
        for engine, name, fn in attached:
            event.remove(engine, name, fn)
