"""Binlog replication with GTIDs as read routing needs it: the primary's write position
after a commit and whether a replica applied it. MariaDB and MySQL differ in both:

- MariaDB positions are GTID lists (``0-1-42,1-2-7``, one ``domain-server-seq`` per
  domain): the session's ``@@last_gtid`` right after its commit, else
  ``@@gtid_binlog_pos``; a replica applied one when ``MASTER_GTID_WAIT(pos, 0)`` is 0.
- MySQL positions are GTID sets (``uuid:1-42``): ``@@gtid_executed``; a replica applied
  one when ``GTID_SUBSET(pos, @@gtid_executed)``.

The lag is ``Seconds_Behind_Master`` on MariaDB, ``Seconds_Behind_Source`` on MySQL
(NULL when replication is stopped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc, text

from storelayer.backend import Replication

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from storelayer import Settings

#: Pool tuning of a replica's engine (reads spread over replicas and the primary).
REPLICA_POOL_OPTIONS: Mapping[str, Any] = {"pool_size": 3, "max_overflow": 5}

_MARIADB_GTID_LIST = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20})*$")
_MARIADB_POSITION = text("SELECT @@session.last_gtid, @@global.gtid_binlog_pos")
_MYSQL_INTERVALS = r"(:\d{1,20}(-\d{1,20})?)+"
_MYSQL_GTID_SET = re.compile(
    rf"^[0-9a-fA-F-]{{36}}{_MYSQL_INTERVALS}(,\s*[0-9a-fA-F-]{{36}}{_MYSQL_INTERVALS})*$"
)


def is_mariadb(connection: Connection) -> bool:
    """Whether the server behind ``connection`` is MariaDB (known once connected)."""
    return bool(getattr(connection.dialect, "is_mariadb", False))


def checked_position(position: str, mariadb: bool) -> str:
    """``position`` if it is a GTID list (MariaDB) or set (MySQL), else ``ValueError``."""
    pattern = _MARIADB_GTID_LIST if mariadb else _MYSQL_GTID_SET
    if not pattern.match(position):
        flavor = "MariaDB GTID list" if mariadb else "MySQL GTID set"
        raise ValueError(f"not a {flavor}: {position[:60]!r}")
    return position


def replica_status(connection: Connection) -> list[dict[str, Any]]:
    """One row per replication channel; empty on a server that replicates nothing."""
    try:
        result = connection.exec_driver_sql("SHOW REPLICA STATUS")
    except exc.ProgrammingError:  # before MySQL 8.0.22 / MariaDB 10.5.1
        result = connection.exec_driver_sql("SHOW SLAVE STATUS")
    return [dict(row._mapping) for row in result]


class MySQLReplication(Replication):
    """``MySQLBackend.replication``: binlog replication with GTIDs."""

    def pool_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        return dict(REPLICA_POOL_OPTIONS)

    def lag(self, connection: Connection) -> float | None:
        """None when not a replica or when replication is stopped (the server does not
        know); else the seconds the slowest replication channel is behind."""
        lags = [
            row.get("Seconds_Behind_Source", row.get("Seconds_Behind_Master"))
            for row in replica_status(connection)
        ]
        known = [float(lag) for lag in lags if lag is not None]
        if not known or len(known) < len(lags):
            return None
        return max(known)

    def write_position(self, connection: Connection) -> str | None:
        """The GTID position this connection's last commit reached; None when binary
        logging or GTIDs are off (read-your-writes then uses a time window)."""
        if is_mariadb(connection):
            row = connection.execute(_MARIADB_POSITION).one()
            return str(row[0] or row[1] or "") or None
        value = connection.execute(text("SELECT @@global.gtid_executed")).scalar()
        return " ".join(str(value or "").split()) or None

    def has_replayed(self, connection: Connection, position: str) -> bool:
        """Whether this replica applied every transaction up to ``position``, now."""
        mariadb = is_mariadb(connection)
        checked = checked_position(position, mariadb)
        if mariadb:
            query = text("SELECT MASTER_GTID_WAIT(:position, 0)")
            return connection.execute(query, {"position": checked}).scalar() == 0
        query = text("SELECT GTID_SUBSET(:position, @@GLOBAL.gtid_executed)")
        return bool(connection.execute(query, {"position": checked}).scalar())
