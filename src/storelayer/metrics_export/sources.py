"""What both exporters read from a database: its engines, each with the attributes that
name it (OpenTelemetry's database client conventions), the operation a statement
performs, and the connections of its pool."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sqlalchemy.engine import Engine

from storelayer._pool import pool_usage

#: First keywords reported as ``db.operation.name``; any other statement reports none,
#: so that the attribute's values stay few (no SQL text ever becomes a label).
OPERATIONS = frozenset({
    "ALTER", "ANALYZE", "BEGIN", "CALL", "COMMIT", "COPY", "CREATE", "DELETE", "DROP",
    "EXPLAIN", "GRANT", "INSERT", "LOCK", "MERGE", "PRAGMA", "RELEASE", "REPLACE", "REVOKE",
    "ROLLBACK", "SAVEPOINT", "SELECT", "SET", "SHOW", "TRUNCATE", "UPDATE", "VACUUM", "WITH",
})
_FIRST_WORD = re.compile(r"^\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*([A-Za-z]+)", re.DOTALL)


class EngineSource(NamedTuple):
    """One engine of a database and how the exporters name it."""

    role: str
    engine: Engine
    #: ``db.system.name``, ``db.namespace``, ``server.address``, ``server.port``.
    attributes: dict[str, str | int]
    #: ``db.client.connection.pool.name``: ``address:port/namespace``, and the role
    #: for a replica.
    pool_name: str


def operation_name(statement: str) -> str | None:
    """``SELECT`` for ``select * from t``: the statement's first keyword, upper case, if
    it is one of :data:`OPERATIONS`."""
    found = _FIRST_WORD.match(statement)
    word = found[1].upper() if found else ""
    return word if word in OPERATIONS else None


def engine_source(backend_name: str, role: str, engine: Any) -> EngineSource:
    """The source of one engine (an ``AsyncEngine`` stands for its sync engine)."""
    sync: Engine = getattr(engine, "sync_engine", engine)
    url = sync.url
    attributes: dict[str, str | int] = {"db.system.name": backend_name}
    if url.database:
        attributes["db.namespace"] = url.database
    if url.host:
        attributes["server.address"] = url.host
    if url.port:
        attributes["server.port"] = url.port
    where = f"{url.host}:{url.port}/{url.database}" if url.host else str(url.database or "")
    pool_name = where if role == "primary" else f"{where} ({role})"
    return EngineSource(role, sync, attributes, pool_name)


def sources(db: Any) -> list[EngineSource]:
    """Every engine of ``db`` (a ``Database`` or an ``AsyncDatabase``), primary first."""
    return [engine_source(db.backend.name, role, e) for role, e in db.engines().items()]


class PoolState(NamedTuple):
    """An engine's pool right now (zeros for a pool that keeps no count)."""

    used: int
    idle: int
    #: ``pool_size + max_overflow``: the most connections it opens at once.
    max: int
    #: ``pool_size``: the most idle connections it keeps.
    idle_max: int
    waits: int
    wait_seconds: float
    timeouts: int


def pool_state(engine: Engine) -> PoolState:
    """The pool's connections, limits and waits."""
    usage = pool_usage(engine)
    size = int(usage.get("size", 0))
    return PoolState(
        used=int(usage.get("checked_out", 0)),
        idle=int(usage.get("idle", 0)),
        max=size + int(usage.get("max_overflow", 0)),
        idle_max=size,
        waits=int(usage.get("waits", 0)),
        wait_seconds=float(usage.get("wait_seconds", 0.0)),
        timeouts=int(usage.get("timeouts", 0)),
    )
