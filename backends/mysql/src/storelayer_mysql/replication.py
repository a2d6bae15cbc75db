"""Binlog replication with GTIDs as read routing needs it: the primary's write position
after a commit and whether a replica applied it. MariaDB and MySQL differ in both:

- MariaDB positions are GTID lists (``0-1-42,1-2-7``, one ``domain-server-seq`` per
  domain): the session's ``@@last_gtid`` right after its commit, else
  ``@@gtid_binlog_pos``; a replica applied one when ``MASTER_GTID_WAIT(pos, 0)`` is 0.
- MySQL positions are GTID sets (``uuid:1-42``): ``@@gtid_executed``; a replica applied
  one when ``GTID_SUBSET(pos, @@gtid_executed)``.

The lag itself (``Seconds_Behind_Master`` on MariaDB, ``Seconds_Behind_Source`` on
MySQL, NULL when replication is stopped) is read by ``MySQLBackend.replica_lag``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: Pool tuning of a replica's engine (reads spread over replicas and the primary).
REPLICA_POOL_OPTIONS: Mapping[str, Any] = {"pool_size": 3, "max_overflow": 5}

_MARIADB_GTID_LIST = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20})*$")
_MYSQL_INTERVALS = r"(:\d{1,20}(-\d{1,20})?)+"
_MYSQL_GTID_SET = re.compile(
    rf"^[0-9a-fA-F-]{{36}}{_MYSQL_INTERVALS}(,\s*[0-9a-fA-F-]{{36}}{_MYSQL_INTERVALS})*$"
)


def is_mariadb(connection: Connection) -> bool:
    """Whether the server behind ``connection`` is MariaDB (known once connected)."""
    return bool(getattr(connection.dialect, "is_mariadb", False))


def write_position(connection: Connection) -> str | None:
    """The GTID position this connection's last commit reached; None when binary
    logging or GTIDs are off (read-your-writes then uses a time window)."""
    if is_mariadb(connection):
        row = connection.execute(text("SELECT @@session.last_gtid, @@global.gtid_binlog_pos")).one()
        return str(row[0] or row[1] or "") or None
    value = connection.execute(text("SELECT @@global.gtid_executed")).scalar()
    return " ".join(str(value or "").split()) or None


def checked_position(position: str, mariadb: bool) -> str:
    """``position`` if it is a GTID list (MariaDB) or set (MySQL), else ``ValueError``."""
    pattern = _MARIADB_GTID_LIST if mariadb else _MYSQL_GTID_SET
    if not pattern.match(position):
        flavor = "MariaDB GTID list" if mariadb else "MySQL GTID set"
        raise ValueError(f"not a {flavor}: {position[:60]!r}")
    return position


def has_replayed(connection: Connection, position: str) -> bool:
    """Whether this replica applied every transaction up to ``position``, now."""
    mariadb = is_mariadb(connection)
    checked = checked_position(position, mariadb)
    if mariadb:
        query = text("SELECT MASTER_GTID_WAIT(:position, 0)")
        return connection.execute(query, {"position": checked}).scalar() == 0
    query = text("SELECT GTID_SUBSET(:position, @@GLOBAL.gtid_executed)")
    return bool(connection.execute(query, {"position": checked}).scalar())
