"""Text values checked before they reach a driver: bytes, text that is not valid
Unicode (undecodable bytes smuggled in by ``errors="surrogateescape"``) and NUL
characters each get an ``InvalidValue`` (a ``QueryError``) naming the column and the
fix, instead of a different driver error per database, or silently stored bytes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import types

from storelayer.errors import InvalidValue


def is_text(column_type: Any) -> bool:
    """Whether a column of this type holds text."""
    return isinstance(column_type, types.String)


def check_text(where: str, value: Any) -> None:
    """Reject a value a text column cannot hold; ``where`` names the column."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            raw.decode("utf-8")
            detail = "decode them first: value.decode('utf-8')"
        except UnicodeDecodeError as error:
            detail = (
                f"they are not valid UTF-8 (at position {error.start}); decode them with "
                "the encoding they were written in"
            )
        raise InvalidValue(f"{where} holds text, got bytes: {detail}", where, "text")
    if not isinstance(value, str) or (value.isascii() and "\x00" not in value):
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidValue(
            f"{where} got text that is not valid Unicode: the character at position "
            f"{error.start} is a lone surrogate (bytes decoded with "
            "errors='surrogateescape'?); decode the original bytes with their real encoding",
            where,
            "valid Unicode",
        ) from None
    if "\x00" in value:
        raise InvalidValue(
            f"{where} got text with a NUL character at position {value.index(chr(0))}, "
            "which not every database can store in text; remove it, or use a binary column",
            where,
            "no NUL character",
        )


def check_text_filter(where: str, value: Any) -> None:
    """Like :func:`check_text`, for a filter value that may be a list of values."""
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            check_text(where, item)
    else:
        check_text(where, value)
