"""Retention rules: the newest N, then the newest artifact of each day, ISO week and
month, as far back as asked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from storelayer.backup.retention import Artifact, RetentionPolicy, select_prunable

START = dt.datetime(2024, 3, 31, 23, 0, tzinfo=dt.timezone.utc)


def hourly_for(days: int, every_hours: int = 6) -> list[Artifact]:
    steps = days * 24 // every_hours
    return [
        Artifact(Path(f"b{i:04d}"), START - dt.timedelta(hours=i * every_hours))
        for i in range(steps)
    ]


def kept(artifacts: list[Artifact], policy: RetentionPolicy) -> list[str]:
    pruned = set(select_prunable(artifacts, policy))
    return sorted(a.path.name for a in artifacts if a.path not in pruned)


def test_no_rule_prunes_nothing() -> None:
    assert select_prunable(hourly_for(10), RetentionPolicy()) == []


def test_keep_n_keeps_the_newest() -> None:
    assert kept(hourly_for(3), RetentionPolicy(keep=2)) == ["b0000", "b0001"]


def test_daily_keeps_the_newest_of_each_of_the_last_days() -> None:
    artifacts = hourly_for(5)
    names = kept(artifacts, RetentionPolicy(daily=3))
    days = {a.created.date() for a in artifacts if a.path.name in names}
    assert len(names) == 3 and len(days) == 3
    assert "b0000" in names  # the newest of the newest day


def test_weekly_and_monthly_reach_further_back() -> None:
    artifacts = hourly_for(120, every_hours=24)
    names = kept(artifacts, RetentionPolicy(daily=2, weekly=3, monthly=4))
    created = {a.path.name: a.created for a in artifacts}
    months = {(created[n].year, created[n].month) for n in names}
    assert len(months) == 4
    assert len(names) <= 2 + 3 + 4
    oldest_kept = min(created[n] for n in names)
    assert oldest_kept < START - dt.timedelta(days=85)


def test_pruned_come_oldest_first_and_rules_combine() -> None:
    artifacts = hourly_for(4)
    pruned = select_prunable(artifacts, RetentionPolicy(keep=1, daily=2))
    assert pruned == sorted(pruned, reverse=True)  # names grow older
    assert len(pruned) == len(artifacts) - 2
