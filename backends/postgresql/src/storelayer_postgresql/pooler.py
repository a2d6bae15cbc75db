"""Behind a pooler in transaction mode (PgBouncer ``pool_mode = transaction``), a server
connection serves this client for one transaction only, then another client. So nothing
may outlive a transaction on it:

- no server-side prepared statements (psycopg 3 prepares a statement after 5 runs;
  ``prepare_threshold=None`` turns that off; psycopg2 never prepares);
- no start-up ``options`` (PgBouncer refuses them, or drops them silently):
  ``statement_timeout`` is set per transaction with ``SET LOCAL`` instead;
- no session advisory lock (``migration_lock``: a transaction-scoped one instead).

Reasons and figures: docs/backends/postgresql.md, "Behind PgBouncer"."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from storelayer.backend import AUTOCOMMIT_OPTION

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from storelayer import Settings

#: Engine execution option: the pooler mode the engine was configured for.
POOLER_OPTION = "storelayer_pooler"
#: Engine execution option: milliseconds of ``SET LOCAL statement_timeout`` per transaction.
TIMEOUT_OPTION = "storelayer_statement_timeout_ms"
TRANSACTION = "transaction"

_UNSUPPORTED_PARAMETER = re.compile(r"unsupported startup parameter", re.IGNORECASE)


def in_transaction_mode(settings: Settings) -> bool:
    """Whether ``settings`` say a pooler in transaction mode is in front of the server."""
    return settings.pooler == TRANSACTION


def execution_options(settings: Settings, timeout_ms: int) -> dict[str, Any]:
    """Engine execution options that tell the per-transaction setup what to do."""
    if not in_transaction_mode(settings):
        return {}
    options: dict[str, Any] = {POOLER_OPTION: TRANSACTION}
    if timeout_ms:
        options[TIMEOUT_OPTION] = timeout_ms
    return options


def connect_args(settings: Settings, wanted: dict[str, Any]) -> dict[str, Any]:
    """libpq parameters a pooler in transaction mode accepts: no ``options``."""
    if in_transaction_mode(settings):
        wanted.pop("options", None)
    return wanted


def async_connect_args(settings: Settings) -> dict[str, Any]:
    """psycopg 3 arguments: no automatic server-side prepares behind the pooler."""
    return {"prepare_threshold": None} if in_transaction_mode(settings) else {}


def is_pooled_per_transaction(connection: Connection) -> bool:
    """Whether ``connection``'s engine was configured for a pooler in transaction mode."""
    return connection.get_execution_options().get(POOLER_OPTION) == TRANSACTION


def set_timeout_per_transaction(engine: Engine) -> None:
    """``SET LOCAL statement_timeout`` as a transaction's first statement, where the
    engine's execution options ask for it (not in a ``read_session(autocommit=True)``,
    which runs without a transaction)."""

    def begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        milliseconds = options.get(TIMEOUT_OPTION)
        if not milliseconds or options.get(AUTOCOMMIT_OPTION):
            return
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(f"SET LOCAL statement_timeout = {int(milliseconds)}")
        finally:
            cursor.close()

    event.listen(engine, "begin", begin)


def misconfiguration(message: str) -> str | None:
    """The fix when a pooler refused a start-up parameter (PgBouncer:
    "unsupported startup parameter: options")."""
    if not _UNSUPPORTED_PARAMETER.search(message):
        return None
    return (
        "A connection pooler in front of the server refused a start-up parameter: set "
        "pooler='transaction' (STORELAYER_POOLER=transaction) so that storelayer sends none "
        "(statement_timeout is then set per transaction), or add the parameter to the "
        "pooler's ignore_startup_parameters"
    )
