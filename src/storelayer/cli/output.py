"""Plain-text tables and key/value blocks, and the one JSON document of ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

#: Shown for a missing value.
EMPTY = "-"


def cell(value: object) -> str:
    """One value as table text: ``-`` for nothing, ``yes``/``no``, lists comma-joined."""
    if value is None or value == []:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An aligned text table with a header line; the last column is not padded."""
    lines = [list(headers), *([cell(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def pairs(values: Mapping[str, object], indent: int = 0) -> str:
    """``key  value`` lines with the values aligned."""
    if not values:
        return ""
    width = max(len(key) for key in values)
    pad = " " * indent
    return "\n".join(f"{pad}{key.ljust(width)}  {cell(v)}".rstrip() for key, v in values.items())


def section(title: str, body: str) -> str:
    """A titled block for human output."""
    return f"{title}\n{body}" if body else title


def emit_json(document: Any) -> None:
    """Print ``document`` as the single JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, default=str))
