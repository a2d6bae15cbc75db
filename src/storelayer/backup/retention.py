"""Retention: which artifacts of a directory to keep (the newest N, then the newest of
each of the last N days, ISO weeks and months) and which to prune."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storelayer.backup.artifact import ARTIFACT_SUFFIX, read_manifest
from storelayer.errors import BackupError


@dataclass(frozen=True)
class RetentionPolicy:
    """How many artifacts to keep; 0 keeps none by that rule."""

    keep: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @property
    def active(self) -> bool:
        """Whether any rule is set (without one, nothing is pruned)."""
        return any((self.keep, self.daily, self.weekly, self.monthly))


@dataclass(frozen=True)
class Artifact:
    """One artifact in the directory, by creation time."""

    path: Path
    created: dt.datetime


def _day(when: dt.datetime) -> tuple[int, ...]:
    return (when.year, when.month, when.day)


def _week(when: dt.datetime) -> tuple[int, ...]:
    iso = when.isocalendar()
    return (iso[0], iso[1])


def _month(when: dt.datetime) -> tuple[int, ...]:
    return (when.year, when.month)


def _newest_per_period(
    newest_first: Sequence[Artifact], count: int, period: Callable[[dt.datetime], tuple[int, ...]]
) -> set[Path]:
    kept: dict[tuple[int, ...], Path] = {}
    for artifact in newest_first:
        key = period(artifact.created)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = artifact.path
    return set(kept.values())


def select_prunable(artifacts: Sequence[Artifact], policy: RetentionPolicy) -> list[Path]:
    """The artifacts no rule keeps, oldest first; none when no rule is set."""
    if not policy.active:
        return []
    newest_first = sorted(artifacts, key=lambda a: a.created, reverse=True)
    kept = {a.path for a in newest_first[: policy.keep]}
    for count, period in ((policy.daily, _day), (policy.weekly, _week), (policy.monthly, _month)):
        if count:
            kept |= _newest_per_period(newest_first, count, period)
    return [a.path for a in reversed(newest_first) if a.path not in kept]


def artifacts_in(directory: Path, backend: str, database: str) -> list[Artifact]:
    """The readable artifacts of ``database`` on ``backend`` in ``directory``; other
    files, other databases and damaged artifacts are left alone."""
    found = []
    for path in sorted(directory.glob(f"*{ARTIFACT_SUFFIX}")):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            manifest = read_manifest(path)
        except BackupError:
            continue
        if manifest.backend == backend and manifest.database == database:
            found.append(Artifact(path, manifest.created))
    return found


def prune(
    directory: Path,
    backend: str,
    database: str,
    policy: RetentionPolicy,
    protect: Path | None = None,
) -> list[Path]:
    """Delete the artifacts the policy does not keep (never ``protect``); return them."""
    artifacts = artifacts_in(directory, backend, database)
    doomed = [p for p in select_prunable(artifacts, policy) if p != protect]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
