"""Commit markers: how a backend tells, after a connection lost during COMMIT, whether
the unit committed (``Operations.commit_marker`` and ``committed``).

Each pooled connection owns one row of a markers table that storelayer keeps apart
from the application's tables, keyed by a random id drawn when the connection is first
used. Just before COMMIT, a unit that wrote sets that row's ``seq`` to the unit's number,
inside its own transaction: the row holds that number if and only if the unit
committed. That holds across a server restart and a failover, where a transaction id
does not: ids the server had not yet made durable are handed out again after a crash.

The row is the answer, read on a new connection once whatever the server still runs of
the lost unit has ended. A backend says how its database creates, writes and reads the
table in a :class:`CommitMarkers` subclass; the bookkeeping lives here, once.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import event, exc

from storelayer.backend.concerns import UNKNOWN_OUTCOME
from storelayer.backend.readonly import READ_ONLY_OPTION

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: ``Connection.info`` keys: this connection's marker id, the number of its last unit.
MARKER_KEY, SEQ_KEY = "storelayer.marker", "storelayer.marker_seq"
#: Seconds after which a marker row no outcome check can need any more is pruned.
PRUNE_AFTER_SECONDS = 86400

#: An engine's dialect (shared by its views, kept by dispose()) -> its markers.
_ENGINES: weakref.WeakKeyDictionary[Any, CommitMarkers] = weakref.WeakKeyDictionary()


class CommitMarkers:
    """Per engine: whether the markers table is there (``ready``; None: not tried
    yet), and each unit's marker. Subclasses give the database's statements."""

    #: Where the table lives, for the warning when it cannot be made.
    home: ClassVar[str] = "the storelayer schema"
    logger: ClassVar[logging.Logger] = logging.getLogger("storelayer")

    def __init__(self) -> None:
        self.ready: bool | None = None
        self._setting_up = False

    # -- what a backend supplies ---------------------------------------------------------

    def read_only(self, conn: Connection) -> bool:
        """Whether the server takes no writes (a replica): then never any marker."""
        raise NotImplementedError

    def make(self, conn: Connection) -> bool | None:
        """Create the table where it is missing (the user may lack the right, a DBA may
        have made it) and prune old rows; whether the unit on ``conn`` can use it (None:
        not known yet, the next unit tries). The unit's transaction must stay usable
        whatever the server refused."""
        raise NotImplementedError

    def wrote(self, conn: Connection) -> bool | None:
        """Whether the unit on ``conn`` wrote; None when :meth:`write` tells."""
        raise NotImplementedError

    def write(self, conn: Connection, key: bytes, seq: int) -> Any:
        """Set this connection's row to ``seq`` in the unit's transaction; the marker
        (``(key, seq, ...)``), or None when the unit wrote nothing after all."""
        raise NotImplementedError

    def gone(self, error: exc.DBAPIError) -> bool:
        """Whether ``error`` says the table went away (or the right to write it)."""
        raise NotImplementedError

    def committed(self, conn: Connection, marker: Any) -> bool | None:
        """On a new connection: whether the unit ``marker`` names committed; None while
        the server cannot tell yet (it is asked again)."""
        raise NotImplementedError

    #: Whether a failed statement ends the transaction (PostgreSQL): a marker that could
    #: not be written then fails the unit instead of going without.
    failed_statement_aborts: ClassVar[bool] = False

    # -- the bookkeeping ----------------------------------------------------------------

    def set_up(self, conn: Connection) -> None:
        """Before the first read-write unit of the engine: create the table where it is
        missing (the user may lack the right, a DBA may have created it). An engine
        that cannot use the table goes without markers (its lost COMMITs stay
        unknown), as it says once."""
        if self.read_only(conn):
            self.ready = False  # a replica, or a server kept read-only: never write
            return
        self.ready = self.make(conn)
        if self.ready is False:
            self.logger.warning(
                "no commit markers on %s: a COMMIT lost with its connection will raise "
                "CommitOutcomeUnknown. Let the application's user create %s, or create "
                "it yourself (docs/backends/)",
                conn.engine.url.render_as_string(hide_password=True),
                self.home,
            )

    def begin(self, conn: Connection) -> None:
        """At the start of each unit: set up the markers once (not in read units)."""
        if self.ready is not None or self._setting_up:
            return  # decided, or another unit sets them up now (this one goes without)
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            return
        self._setting_up = True
        try:
            self.set_up(conn)
        finally:
            self._setting_up = False

    def mark(self, connection: Connection) -> Any:
        """Just before COMMIT: the marker of a unit that wrote, written in its
        transaction; None when it wrote nothing, ``UNKNOWN_OUTCOME`` when the engine
        has no markers."""
        wrote = self.wrote(connection)
        if wrote is False:
            return None
        if not self.ready:
            return UNKNOWN_OUTCOME
        info = connection.info
        key: bytes = info.setdefault(MARKER_KEY, secrets.token_bytes(16))
        seq = info[SEQ_KEY] = info.get(SEQ_KEY, 0) + 1
        try:
            return self.write(connection, key, seq)
        except exc.DBAPIError as error:
            # The table went away (or the right to write it): set it up again at the
            # next unit. Anything else (a deadlock rolled the unit back) is the unit's.
            if not self.gone(error):
                raise
            self.ready = None
            if self.failed_statement_aborts:
                raise
            return UNKNOWN_OUTCOME


def register(engine: Engine, markers: CommitMarkers) -> CommitMarkers:
    """Keep ``markers`` as ``engine``'s (once per engine) and set them up at the first
    unit; the registered markers."""
    kept = _ENGINES.setdefault(engine.dialect, markers)
    if kept is markers:
        event.listen(engine, "begin", markers.begin)
    return kept


def markers_of(connection: Connection) -> CommitMarkers | None:
    """The markers of the engine ``connection`` belongs to (None: not registered)."""
    return _ENGINES.get(connection.dialect)


def no_markers_on(engine: Engine) -> None:
    """Never set up or write markers through ``engine`` (a replica's)."""
    markers = _ENGINES.get(engine.dialect)
    if markers is not None:
        markers.ready = False
