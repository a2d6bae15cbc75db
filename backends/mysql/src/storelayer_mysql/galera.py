"""MariaDB Galera as storelayer sees it: whether a node may take writes, which errors
mean "this node cannot serve now, use another", and the facts behind them.

- A node that lost the primary component (or is still joining) accepts connections and
  pings, but answers every query with error 1047 ("WSREP has not yet prepared node for
  application use"): it is judged by ``wsrep_ready`` and ``wsrep_local_state`` (4:
  Synced), not by whether it answers.
- Write conflicts between nodes (certification failures) arrive as 1213, often at
  COMMIT: transient like any deadlock, the whole unit of work runs again.

Reasons and figures: docs/operations/clusters.md."""

from __future__ import annotations

from typing import Any

#: wsrep_local_state of a node that is a full member: 4 (Synced).
SYNCED = "4"
#: Errors of a node that cannot serve now (the cluster still can, elsewhere): 1047
#: "WSREP has not yet prepared node for application use", 1180 (a COMMIT the provider
#: refused), 4006 (wsrep max writeset size), 1927 (connection killed by the provider).
WSREP_CODES = frozenset({1047, 1180, 1927})
#: read_only, and whether the server is a Galera node (MySQL has no wsrep_on: absent).
_VARIABLES = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_on')"
#: The status variables that tell whether a Galera node may take writes.
_STATUS = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN "
    "('wsrep_ready', 'wsrep_local_state', 'wsrep_cluster_status')"
)


def is_wsrep_error(code: int | None, message: str) -> bool:
    """Whether an error means this Galera node cannot serve now (another node can)."""
    if code == 1047:
        return "wsrep" in message.lower() or "prepared node" in message.lower()
    return code in WSREP_CODES and "wsrep" in message.lower()


def _rows(dbapi_connection: Any, statement: str) -> dict[str, str]:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        return {str(name).lower(): str(value) for name, value in cursor.fetchall()}
    finally:
        cursor.close()


def node_problem(dbapi_connection: Any) -> str | None:
    """Why the server behind ``dbapi_connection`` may not take writes (read-only, or a
    Galera node that is not a ready, synced member of the primary component); None
    when it may. One query, two on a Galera node; their transaction is rolled back."""
    try:
        variables = _rows(dbapi_connection, _VARIABLES)
        status = _rows(dbapi_connection, _STATUS) if _on(variables) else {}
    finally:
        dbapi_connection.rollback()
    if variables.get("read_only", "OFF").upper() in ("ON", "1"):
        return "the server is read-only (read_only=ON)"
    if not status:  # not a Galera node
        return None
    if status.get("wsrep_ready", "OFF").upper() != "ON":
        return "the Galera node is not ready (wsrep_ready=OFF)"
    if status.get("wsrep_cluster_status", "Primary") != "Primary":
        return "the Galera node is outside the primary component"
    if status.get("wsrep_local_state") != SYNCED:
        return "the Galera node is not synced (joining, donor or desynced)"
    return None


def is_galera(dbapi_connection: Any) -> bool:
    """Whether the server is a Galera node with replication on (``wsrep_on``)."""
    return _on(_rows(dbapi_connection, _VARIABLES))


def _on(variables: dict[str, str]) -> bool:
    return variables.get("wsrep_on", "OFF").upper() in ("ON", "1")
