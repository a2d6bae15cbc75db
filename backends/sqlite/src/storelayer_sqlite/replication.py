"""SQLite has no server replication. A "replica" is a read-only connection to the same
file (under WAL, readers never block the writer and see every commit at once) or to a
copy refreshed by other means (a backup, Litestream); storelayer cannot know how far a
copy is behind, so the lag is unknown and only failures eject a replica.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL


def reader_url(database: str | Path) -> URL:
    """A read-only URL of the database file at ``database``, for
    ``DATABASE_REPLICA_URLS``: ``sqlite:///file:<path>?mode=ro&uri=true``."""
    path = Path(database).resolve()
    return URL.create(
        "sqlite+pysqlite", database=f"file:{path}", query={"mode": "ro", "uri": "true"}
    )
