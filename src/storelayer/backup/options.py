"""``BackupOptions``: the choices a backup strategy receives, the same for every backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


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
    # For a restore fed from a pipe (storelayer.backup.unpack): waits for the end of the
    # dump and checks it (size, SHA-256, a full read), returning its rows per table, or
    # raises a BackupError. A restore calls it before it switches the data in (commit,
    # swap); None when the source is a file checked before.
    checked_rows: Callable[[], dict[str, int]] | None = field(default=None, compare=False)

    def dump_checked(self) -> dict[str, int] | None:
        """:attr:`checked_rows`'s answer, if the restore is fed from a pipe."""
        return self.checked_rows() if self.checked_rows is not None else None
