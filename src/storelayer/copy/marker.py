"""What a copy that creates tables leaves in the target while it runs: a marker table
naming its owner (host and process id) and the tables that were there before. A copy
that ends, however it ends short of SIGKILL, drops what it created and the marker; after
a SIGKILL the next copy into the target (or ``storelayer copy --prune-stale``) finds the
marker of a dead owner and drops what that copy created."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, inspect, select
from sqlalchemy.engine import Engine

from storelayer.backup.children import owner_alive
from storelayer.errors import BackupError

#: The marker table's name.
MARKER = "storelayer_copy_in_progress"


def _marker_table() -> Table:
    return Table(
        MARKER,
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("host", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("started_at", String(40), nullable=False),
        Column("tables_before", Text, nullable=False),
    )


@dataclass(frozen=True)
class Owner:
    """The copy a marker row belongs to."""

    id: int
    host: str
    pid: int
    started_at: str
    tables_before: frozenset[str]

    @property
    def alive(self) -> bool:
        """Whether the owning process may still run (always, on another host)."""
        return self.host != socket.gethostname() or owner_alive(self.pid)

    def describe(self) -> str:
        """``pid N on host H since T``."""
        return f"pid {self.pid} on host {self.host} since {self.started_at}"


def owners(engine: Engine) -> list[Owner]:
    """The copies that marked ``engine``'s database, in the order they started."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(MARKER):
            return []
        marker = _marker_table()
        rows = connection.execute(select(marker).order_by(marker.c.id)).all()
    return [
        Owner(r.id, r.host, r.pid, r.started_at, frozenset(json.loads(r.tables_before)))
        for r in rows
    ]


def drop_tables(engine: Engine, names: set[str]) -> None:
    """Drop the named tables of ``engine``'s database, dependants first."""
    if not names:
        return
    engine.dispose()  # a pooled connection may hold a lock on a half-filled table
    metadata = MetaData()
    metadata.reflect(engine, only=sorted(names))
    metadata.drop_all(engine)


def prune_stale(engine: Engine) -> list[str]:
    """Undo the copies into ``engine``'s database whose owner died: drop the tables each
    created, then its marker. Returns one line per copy undone. ``BackupError`` when a
    copy that may still run holds the database."""
    undone = []
    for owner in owners(engine):
        if owner.alive:
            raise BackupError(
                f"another copy ({owner.describe()}) is filling this database: wait for it, "
                f"or, if it is gone, drop the table {MARKER} and the tables it created"
            )
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
        created = present - owner.tables_before - {MARKER}
        drop_tables(engine, created)
        marker = _marker_table()
        with engine.begin() as connection:
            connection.execute(delete(marker).where(marker.c.id == owner.id))
        undone.append(
            f"dropped {len(created)} tables left by a killed copy ({owner.describe()})"
        )
    _drop_marker_if_unused(engine)
    return undone


def _drop_marker_if_unused(engine: Engine) -> None:
    with engine.connect() as connection:
        if not inspect(connection).has_table(MARKER):
            return
    if not owners(engine):
        _marker_table().drop(engine, checkfirst=True)


def mark(engine: Engine) -> tuple[int, frozenset[str]]:
    """Mark ``engine``'s database as being filled by this process: the marker row's id
    and the tables that were there before."""
    with engine.connect() as connection:
        before = frozenset(inspect(connection).get_table_names()) - {MARKER}
    marker = _marker_table()
    marker.create(engine, checkfirst=True)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with engine.begin() as connection:
        row_id = connection.execute(
            marker.insert().values(
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=started,
                tables_before=json.dumps(sorted(before)),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    return int(row_id), before


@contextmanager
def marked(engine: Engine) -> Iterator[frozenset[str]]:
    """Mark ``engine``'s database (:func:`mark`) while the block runs; yields the
    tables that were there before. The marker goes when the block ends."""
    row_id, before = mark(engine)
    try:
        yield before
    finally:
        engine.dispose()
        marker = _marker_table()
        with engine.begin() as connection:
            connection.execute(delete(marker).where(marker.c.id == row_id))
        _drop_marker_if_unused(engine)
