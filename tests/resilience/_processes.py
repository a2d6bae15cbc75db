"""Stopping and continuing a server's whole process tree (a hung, not dead, server);
whether processes still run, and what they are."""

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


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def describe(pids: list[int]) -> str:
    """The processes among ``pids`` still alive: command line, parent and group."""
    found = []
    for pid in filter(alive, pids):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found.append(f"{pid} (parent {stat[1]}, group {stat[2]}): {command.decode()}")
    return "; ".join(found)
