"""Result shapes read both ways: ``report.healthy`` and ``report["healthy"]``.

Reports, aggregates and history entries are frozen dataclasses; code written against a
dict-returning API indexes them. ``MappingAccess`` gives a dataclass read-only mapping
access to its fields, ``AttributeDict`` gives a dict (whose keys are only known at run
time) attribute access to its keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any


class MappingAccess:
    """Read a dataclass's fields by name as well: ``obj["name"]``, ``"name" in obj``,
    ``obj.get("name")``, ``obj.keys()``, ``dict(obj.items())``."""

    def keys(self) -> list[str]:
        """The field names, in declaration order."""
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when there is no such field."""
        return getattr(self, key) if key in self else default

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of every field."""
        return [(name, getattr(self, name)) for name in self.keys()]

    def values(self) -> list[Any]:
        """The field values, in declaration order."""
        return [getattr(self, name) for name in self.keys()]


class AttributeDict(dict[str, Any]):
    """A dict whose keys read as attributes too (``row.count`` is ``row["count"]``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no {name!r}; it has {', '.join(self) or 'nothing'}"
            ) from None

    def __dir__(self) -> Iterator[str]:
        return iter([*super().__dir__(), *self])
