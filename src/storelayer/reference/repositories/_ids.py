"""Accepting a row or its key wherever a domain method takes a related row."""

from __future__ import annotations

from typing import Any, overload


@overload
def id_of(value: None) -> None: ...
@overload
def id_of(value: Any) -> int: ...


def id_of(value: Any) -> int | None:
    """``value.id`` for a model instance, the value itself for a key, None for None."""
    if value is None:
        return None
    key = getattr(value, "id", value)
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(
            f"expected a model instance or an integer key, got a {type(value).__name__}"
        )
    return key
