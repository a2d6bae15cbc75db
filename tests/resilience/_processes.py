"""Stopping and continuing a server's whole process tree (a hung, not dead, server)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def freeze(pid: int) -> list[int]:
    """SIGSTOP ``pid`` and its descendants; returns them for :func:`thaw`."""
    frozen = descendants(pid)
    for each in frozen:
        with contextlib.suppress(ProcessLookupError):  # ended since it was listed
            os.kill(each, signal.SIGSTOP)
    return frozen


def thaw(pids: list[int]) -> None:
    """SIGCONT every process :func:`freeze` stopped."""
    for each in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGCONT)
