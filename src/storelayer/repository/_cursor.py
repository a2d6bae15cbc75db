"""Signed keyset cursors: opaque to clients, and rejected when altered.

A cursor carries the ordering it was made for and the last row's values of that
ordering, JSON-encoded with type tags, signed with HMAC-SHA256.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from storelayer.errors import QueryError

_PROCESS_KEY = os.urandom(32)
_SIGNATURE_BYTES = 16


def cursor_key() -> bytes:
    """``STORELAYER_CURSOR_SECRET`` when set (cursors survive restarts and work across
    processes), else a random key of this process."""
    secret = os.environ.get("STORELAYER_CURSOR_SECRET")
    return secret.encode() if secret else _PROCESS_KEY


def _tag(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise QueryError(f"cannot put a {type(value).__name__} into a keyset cursor")


_UNTAG: dict[str, Callable[[str], Any]] = {
    "dt": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
    "dec": Decimal,
    "uuid": uuid.UUID,
    "b": base64.b64decode,
}


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        return _UNTAG[tag](raw)
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def encode_cursor(ordering: str, values: Sequence[Any], key: bytes, table: str) -> str:
    """An opaque, signed cursor for the row with ``values`` of ``table`` under
    ``ordering``."""
    body = [table, ordering, [_tag(v) for v in values]]
    payload = json.dumps(body, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload, key))}"


def decode_cursor(cursor: str, ordering: str, key: bytes, table: str) -> list[Any]:
    """The values inside ``cursor``; ``QueryError`` when it was altered, is malformed, or
    was made for another table or ordering."""
    invalid = QueryError(
        "invalid keyset cursor: it was altered, truncated, or signed with another "
        "STORELAYER_CURSOR_SECRET; start again from the first page"
    )
    try:
        body, _, signature = cursor.partition(".")
        payload = _unb64(body)
        if not hmac.compare_digest(_sign(payload, key), _unb64(signature)):
            raise invalid
        made_in, made_for, values = json.loads(payload)
        decoded = [_untag(v) for v in values]
    except (ValueError, TypeError, KeyError, binascii.Error, AttributeError):
        raise invalid from None
    if made_in != table:
        raise QueryError(
            f"keyset cursor was made for table {made_in!r}, not {table!r}; a cursor pages "
            "only the table (and ordering) it came from"
        )
    if made_for != ordering:
        raise QueryError(
            f"keyset cursor was made for order_by={made_for!r}, not {ordering!r}; "
            "keep the same ordering while paging"
        )
    return decoded
