"""``read_session(autocommit=True)`` on PostgreSQL runs each read without a transaction
(one round trip instead of BEGIN, SELECT, COMMIT), so there is no read-only transaction
to refuse a write: the session refuses, before sending it, every statement that is not
a plain read. The check is textual: a ``SELECT`` that calls a function which writes is
not caught (use ``read_session()`` without autocommit for the database's own mode)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from storelayer.backend import AUTOCOMMIT_OPTION, READ_ONLY_OPTION, SELECTS_ONLY_OPTION
from storelayer.errors import ReadOnlySession

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# A read: SELECT, SHOW, EXPLAIN, VALUES or TABLE first (after comments and parentheses),
# or a WITH query, which must then hold no data-modifying statement.
_READ = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*(SELECT|SHOW|EXPLAIN|VALUES|TABLE|WITH)\b",
    re.I | re.S,
)
_MODIFYING = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.I)


def is_plain_read(statement: str) -> bool:
    """Whether ``statement`` only reads (see the module docstring for the limits)."""
    found = _READ.match(statement)
    if found is None:
        return False
    return found[1].upper() != "WITH" or not _MODIFYING.search(statement)


def refuse_writes_without_transaction(engine: Engine) -> None:
    """Raise ``ReadOnlySession`` for a statement other than a plain read sent in a
    ``read_session(autocommit=True)`` unit (``db.rows`` reads, which send only the
    SELECTs they build, are not checked)."""

    @event.listens_for(engine, "before_cursor_execute")
    def before(
        conn: Connection, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        options = conn.get_execution_options()
        read_only = options.get(AUTOCOMMIT_OPTION) and options.get(READ_ONLY_OPTION)
        if read_only and not options.get(SELECTS_ONLY_OPTION) and not is_plain_read(statement):
            raise ReadOnlySession(
                "a write was sent in a read_session(autocommit=True), which only "
                "reads: it was refused before reaching the database and nothing "
                "changed. Write in session() instead"
            )
