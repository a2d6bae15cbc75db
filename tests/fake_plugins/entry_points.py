"""Entry points of group ``storelayer`` as an installed distribution declares them."""

from __future__ import annotations

from importlib import metadata


def entry_point(name: str, value: str) -> metadata.EntryPoint:
    """An entry point of group ``storelayer`` naming ``value`` (``module:attr``)."""
    return metadata.EntryPoint(name=name, value=value, group="storelayer")
