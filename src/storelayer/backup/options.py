"""``BackupOptions``: the choices a backup strategy receives, the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackupOptions:
    """What the caller allows a strategy to do. Each backend reads what applies to it."""

    # May the strategy block writers when that is the only way to a consistent dump
    # (e.g. MySQL tables in a non-transactional engine)? Otherwise it refuses.
    lock_writes: bool = False
    # Parallel workers a strategy may use (a restore that need not be atomic).
    jobs: int = 1
    # Must the restore be all-or-nothing? False only for a scratch database.
    atomic: bool = True
    # May the restore replace objects that already exist in the target (--force)?
    replace: bool = False
