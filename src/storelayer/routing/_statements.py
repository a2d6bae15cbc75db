"""Which statements write: automatic routing keeps a session on the primary from its
first write on. Pure and conservative: anything not known to be a plain read writes."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.sql.elements import TextClause

# A textual statement is a read when it starts with SELECT, SHOW or EXPLAIN (after
# comments and parentheses) and takes no row locks.
_READ_TEXT = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*(SELECT|SHOW|EXPLAIN)\b", re.I | re.S
)
_LOCKING = re.compile(
    r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b|\bLOCK\s+IN\s+SHARE", re.I
)


def is_read_text(sql: str) -> bool:
    """Whether raw SQL is a plain read (``SELECT ...`` without ``FOR UPDATE``...)."""
    return bool(_READ_TEXT.match(sql)) and not _LOCKING.search(sql)


def is_write(clause: Any) -> bool:
    """Whether executing ``clause`` may write or lock rows. None (a raw connection was
    asked for) counts as a write: what it will run is unknown."""
    if clause is None:
        return True
    if getattr(clause, "is_dml", False):
        return True
    if isinstance(clause, TextClause):
        return not is_read_text(clause.text)
    if getattr(clause, "is_select", False):
        return getattr(clause, "_for_update_arg", None) is not None
    return True
