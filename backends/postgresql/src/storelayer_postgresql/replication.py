"""Streaming replication as read routing needs it: a standby's lag, the primary's write
position after a commit, and whether a standby replayed a position.

Positions are WAL LSNs (``16/B374D848``). The lag never comes from
``now() - pg_last_xact_replay_timestamp()`` alone, which on an idle, fully caught-up
standby reports how long the primary has been idle: a standby that has replayed all the
WAL it received is caught up (0.0), and one that is momentarily behind gets a second
look a moment later before its lag is reported. Reasons: docs/operations/replicas.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from storelayer.backend import Replication

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from storelayer import Settings

#: Pool tuning of a replica's engine: reads spread over replicas and the primary, and a
#: standby's max_connections must not be lower than its primary's.
REPLICA_POOL_OPTIONS: Mapping[str, Any] = {"pool_size": 3, "max_overflow": 5}
#: Seconds a standby that is momentarily behind gets to replay what it had received.
SETTLE_SECONDS = 0.05

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")

_STATUS = text(
    "SELECT pg_is_in_recovery() AS in_recovery,"
    " pg_last_wal_receive_lsn()::text AS received,"
    " COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), false) AS caught_up,"
    " EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS streaming,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS since_replay"
)
# The sleep runs in a subquery, so both columns are read after it (server-side: an
# async driver does not block its event loop).
_SETTLED = text(
    "SELECT COALESCE(pg_last_wal_replay_lsn() >= CAST(:received AS pg_lsn), false) AS kept_up,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS since_replay"
    " FROM (SELECT pg_sleep(:settle)) AS pause"
)
_WRITE_POSITION = text("SELECT pg_current_wal_insert_lsn()::text")
_REPLAYED = text("SELECT COALESCE(pg_last_wal_replay_lsn() >= CAST(:position AS pg_lsn), false)")


def seconds(value: Any) -> float | None:
    """A lag in seconds from the server's number, never negative; None stays None."""
    return None if value is None else max(0.0, float(value))


def checked_position(position: str) -> str:
    """``position`` if it is an LSN, else ``ValueError`` (tokens are untrusted input)."""
    if not _LSN.match(position):
        raise ValueError(f"not a PostgreSQL WAL position: {position[:40]!r}")
    return position


class PostgreSQLReplication(Replication):
    """``PostgreSQLBackend.replication``: streaming replication, positions are LSNs."""

    def pool_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        return dict(REPLICA_POOL_OPTIONS)

    def lag(self, connection: Connection, settle: float = SETTLE_SECONDS) -> float | None:
        """None on a primary. On a standby that streams: 0.0 when it replayed everything it
        received, or everything it had received ``settle`` seconds later; else the seconds
        since the last replayed commit was made. On a standby that does not stream (the
        primary is unreachable): the seconds since the last replayed commit, an upper
        bound, since what the primary wrote meanwhile is unknown; None if nothing was
        replayed yet."""
        row = connection.execute(_STATUS).one()
        if not row.in_recovery:
            return None
        if row.streaming and row.caught_up:
            return 0.0
        if row.streaming and row.received is not None:
            later = connection.execute(_SETTLED, {"received": row.received, "settle": settle}).one()
            return 0.0 if later.kept_up else seconds(later.since_replay)
        return seconds(row.since_replay)

    def is_primary(self, connection: Connection) -> bool:
        return not connection.execute(text("SELECT pg_is_in_recovery()")).scalar()

    def write_position(self, connection: Connection) -> str | None:
        """The end of the WAL inserted so far: at or past the commit record of every
        transaction committed before the call, also with ``synchronous_commit = off``."""
        value = connection.execute(_WRITE_POSITION).scalar()
        return None if value is None else str(value)

    def has_replayed(self, connection: Connection, position: str) -> bool:
        """Whether this standby replayed WAL up to ``position``; False on a primary."""
        value = connection.execute(_REPLAYED, {"position": checked_position(position)}).scalar()
        return bool(value)
