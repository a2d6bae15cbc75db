"""The migration lock on a Galera cluster. ``GET_LOCK`` is local to one node, so two
migrators on two nodes would both take it. Instead the lock is a row of its own table,
inserted in a transaction: two nodes inserting it at once are serialized by Galera's
certification (the later writer gets 1213 at COMMIT and waits like any waiter). The row
carries a lease: a migrator that died holding it blocks others until the lease ends (or
until someone deletes the row). While the lock is held, the migrator's reads wait for the
cluster to apply what other nodes committed (``wsrep_sync_wait``), so that it sees the
version table as the previous migrator left it."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import exc, text
from sqlalchemy.engine import Connection

from storelayer.backend.concerns import POLL_SECONDS, WAITING, finish_transaction, timed_out
from storelayer_mysql.galera import is_wsrep_error

#: The table holding one row per held migration lock.
LOCK_TABLE = "storelayer_migration_lock"
#: Seconds a lock row stays valid: a migrator dead while holding it blocks others so long.
LEASE_SECONDS = 3600
#: wsrep_sync_wait while the lock is held: reads wait for the cluster to catch up.
SYNC_READS = 1

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY,"
    " holder VARCHAR(200) NOT NULL, expires_at DATETIME NOT NULL) ENGINE=InnoDB"
)
_EXPIRED = text(f"DELETE FROM {LOCK_TABLE} WHERE name = :name AND expires_at < UTC_TIMESTAMP()")
_TAKE = text(
    f"INSERT INTO {LOCK_TABLE} (name, holder, expires_at)"
    " VALUES (:name, :holder, UTC_TIMESTAMP() + INTERVAL :lease SECOND)"
)
_EXISTS = text(
    "SELECT COUNT(*) FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name = :table"
)
#: Tries to delete the lock row before giving up (each after POLL_SECONDS).
RELEASE_ATTEMPTS = 50
_RELEASE = text(f"DELETE FROM {LOCK_TABLE} WHERE name = :name AND holder = :holder")


def holder_name() -> str:
    """Who holds the lock, for whoever looks at the row: host, process, a nonce."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _attempt(connection: Connection, params: dict[str, object]) -> bool:
    """Insert the lock row and commit; False when it cannot be taken now: another holder
    has it (a duplicate key here, or a certification conflict at COMMIT), or this node is
    out of the primary component for a moment (1047: the wait goes on until it is back)."""
    try:
        connection.execute(_EXPIRED, params)
        connection.execute(_TAKE, params)
        connection.commit()
    except (exc.IntegrityError, exc.OperationalError) as error:
        _roll_back(connection)
        if _code(error) in (1062, 1213, 1205):  # held; lost the certification race; row locked
            return False
        if _cut_off(error):
            return False
        raise
    return True


def _code(error: exc.DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _cut_off(error: exc.DBAPIError) -> bool:
    """Whether ``error`` is this node's "not now" (out of the primary component)."""
    args = getattr(error.orig, "args", ())
    return is_wsrep_error(_code(error), str(args[-1]) if args else "")


def _roll_back(connection: Connection) -> None:
    """Roll back; a node out of the primary component answers ROLLBACK with 1047 too:
    then the connection is dropped (the server rolls back with the session) and the
    next statement connects anew."""
    try:
        connection.rollback()
    except exc.OperationalError as error:
        if not _cut_off(error):
            raise
        connection.invalidate()
        if connection.in_transaction():
            connection.rollback()


@contextmanager
def galera_migration_lock(
    connection: Connection,
    lock_name: str,
    name: str,
    timeout: float,
    report: Callable[[str], None],
) -> Iterator[None]:
    """Hold the cluster-wide lock ``lock_name`` for the block (see the module)."""
    if not connection.execute(_EXISTS, {"table": LOCK_TABLE}).scalar():
        connection.exec_driver_sql(_CREATE)  # DDL runs cluster-wide: only when missing
    finish_transaction(connection)
    params: dict[str, object] = {"name": lock_name, "holder": holder_name(), "lease": LEASE_SECONDS}
    if not _attempt(connection, params):
        report(WAITING)
        deadline = time.monotonic() + timeout
        while not _attempt(connection, params):
            if time.monotonic() >= deadline:
                raise timed_out(name, timeout)
            time.sleep(POLL_SECONDS)
    previous = connection.exec_driver_sql("SELECT @@session.wsrep_sync_wait").scalar()
    connection.exec_driver_sql(f"SET SESSION wsrep_sync_wait = {SYNC_READS}")
    finish_transaction(connection)
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.exec_driver_sql(f"SET SESSION wsrep_sync_wait = {int(previous or 0)}")
        _release(connection, params)


def _release(connection: Connection, params: dict[str, object]) -> None:
    """Delete the lock row; a certification conflict or a busy node (the row is what
    waiters look at) is tried again, so that no waiter waits out the lease."""
    for attempt in range(RELEASE_ATTEMPTS):
        try:
            connection.execute(_RELEASE, params)
            connection.commit()
            return
        except exc.OperationalError as error:
            _roll_back(connection)
            if _code(error) not in (1213, 1205, 1047) or attempt == RELEASE_ATTEMPTS - 1:
                raise
            time.sleep(POLL_SECONDS)
