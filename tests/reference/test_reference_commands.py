"""Commands and performance metrics, on every backend."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from typing import NamedTuple

import pytest

from storelayer.database import Database
from storelayer.errors import Conflict, NotFound, QueryError
from storelayer.reference import CommandStatus, MetricType
from storelayer.reference.repositories import (
    CommandRepository,
    MetricRepository,
    ProjectRepository,
    UserRepository,
)
from storelayer.reference.repositories.metrics import rank_positions
from storelayer.reference.types import utcnow


class World(NamedTuple):
    ada: int
    grace: int
    alpha: int
    beta: int


@pytest.fixture
def world(db: Database) -> World:
    with db.session() as s:
        users = UserRepository(s)
        ada = users.create_user("ada", "ada@example.com", "pw")
        grace = users.create_user("grace", "grace@example.com", "pw")
        projects = ProjectRepository(s)
        alpha = projects.create_project("Alpha", "alpha", ada)
        beta = projects.create_project("Beta", "beta", grace)
    return World(ada.id, grace.id, alpha.id, beta.id)


def ago(**delta: float) -> dt.datetime:
    return utcnow() - dt.timedelta(**delta)


# -- the life of a command ----------------------------------------------------------


def test_start_command(db: Database, world: World) -> None:
    with db.session() as s:
        command = CommandRepository(s).start_command(
            "build", ["--release", "-j4"], user=world.ada, project=world.alpha)
    assert command.status is CommandStatus.RUNNING
    assert command.args == ["--release", "-j4"]
    assert command.started_at is not None
    assert command.started_at.tzinfo is not None
    assert command.finished_at is None
    assert (command.user_id, command.project_id) == (world.ada, world.alpha)


def test_complete_command(db: Database, world: World) -> None:
    started = ago(minutes=1)
    with db.session() as s:
        commands = CommandRepository(s)
        ok = commands.start_command("test", user=world.ada, started_at=started)
        bad = commands.start_command("test", user=world.ada, started_at=started)
    with db.session() as s:
        commands = CommandRepository(s)
        done = commands.complete_command(ok.id, stdout="all passed", stderr="",
                                         finished_at=started + dt.timedelta(seconds=2.5))
        failed = commands.complete_command(bad, exit_code=3, stderr="1 failed")
    assert (done.status, done.exit_code, done.duration_ms) == (CommandStatus.SUCCESS, 0, 2500)
    assert done.stdout == "all passed"
    assert failed.status is CommandStatus.FAILED
    assert failed.exit_code == 3
    assert failed.duration_ms is not None
    assert failed.duration_ms >= 60_000
    with db.read_session() as s:
        stored = CommandRepository(s).get_or_raise(ok.id)
    assert stored.finished_at == started + dt.timedelta(seconds=2.5)


def test_long_output_is_kept_whole(db: Database, world: World) -> None:
    """stdout/stderr are unbounded (MySQL's TEXT would stop at 64 KiB)."""
    output = "x" * 200_000
    with db.session() as s:
        commands = CommandRepository(s)
        command = commands.complete_command(commands.start_command("cat"), stdout=output)
    with db.read_session() as s:
        assert CommandRepository(s).get_or_raise(command.id).stdout == output


def test_fail_command(db: Database, world: World) -> None:
    with db.session() as s:
        commands = CommandRepository(s)
        first = commands.start_command("deploy", user=world.ada)
        second = commands.start_command("deploy", user=world.ada)
        commands.fail_command(first, "host unreachable", exit_code=255)
        commands.fail_command(second.id, TimeoutError("gave up after 30 s"))
    with db.read_session() as s:
        commands = CommandRepository(s)
        one, two = commands.get_or_raise(first.id), commands.get_or_raise(second.id)
    assert (one.status, one.error, one.exit_code) == (
        CommandStatus.FAILED, "host unreachable", 255)
    assert two.error == "TimeoutError: gave up after 30 s"
    assert two.exit_code is None
    assert two.finished_at is not None


def test_a_finished_command_cannot_finish_again(db: Database, world: World) -> None:
    with db.session() as s:
        commands = CommandRepository(s)
        command = commands.complete_command(commands.start_command("x"))
        with pytest.raises(Conflict, match="already finished"):
            commands.fail_command(command, "late")
        with pytest.raises(NotFound):
            commands.complete_command(10**9)


# -- queries ------------------------------------------------------------------------


@pytest.fixture
def history(db: Database, world: World) -> dict[str, int]:
    """Commands of both users in both projects over the last few days."""
    plan = [
        ("a-ok-1h", world.ada, world.alpha, 1, 0),
        ("a-fail-2h", world.ada, world.alpha, 2, 1),
        ("g-fail-3h", world.grace, world.beta, 3, 2),
        ("a-fail-30h", world.ada, world.beta, 30, 1),
        ("g-ok-50h", world.grace, world.alpha, 50, 0),
    ]
    ids = {}
    with db.session() as s:
        commands = CommandRepository(s)
        for name, user, project, hours, code in plan:
            started = ago(hours=hours)
            command = commands.start_command(name, user=user, project=project,
                                             started_at=started)
            commands.complete_command(command, exit_code=code,
                                      finished_at=started + dt.timedelta(seconds=1))
            ids[name] = command.id
        ids["running"] = commands.start_command("running", user=world.ada,
                                                project=world.alpha).id
    return ids


def names(rows: list[object]) -> list[str]:
    return [getattr(row, "name") for row in rows]  # noqa: B009


def test_find_by_status(db: Database, world: World, history: dict[str, int]) -> None:
    with db.read_session() as s:
        commands = CommandRepository(s)
        assert names(commands.find_by_status("failed")) == ["a-fail-2h", "g-fail-3h",
                                                            "a-fail-30h"]
        assert names(commands.find_by_status(CommandStatus.RUNNING)) == ["running"]
        assert names(commands.find_by_status("failed", user=world.ada)) == [
            "a-fail-2h", "a-fail-30h"]
        assert names(commands.find_by_status("failed", project=world.beta, limit=1)) == [
            "g-fail-3h"]
        assert commands.find_by_status(CommandStatus.PENDING) == []
        with pytest.raises(ValueError):
            commands.find_by_status("bogus")


def test_get_recent_commands(db: Database, history: dict[str, int]) -> None:
    with db.read_session() as s:
        commands = CommandRepository(s)
        assert names(commands.get_recent_commands()) == [
            "running", "a-ok-1h", "a-fail-2h", "g-fail-3h"]
        assert names(commands.get_recent_commands(hours=36, limit=10))[-1] == "a-fail-30h"
        assert len(commands.get_recent_commands(hours=72)) == 6
        assert names(commands.get_recent_commands(hours=1.5, limit=1)) == ["running"]


def test_get_failed_commands(db: Database, history: dict[str, int]) -> None:
    with db.read_session() as s:
        commands = CommandRepository(s)
        assert names(commands.get_failed_commands()) == ["a-fail-2h", "g-fail-3h"]
        assert names(commands.get_failed_commands(hours=48)) == [
            "a-fail-2h", "g-fail-3h", "a-fail-30h"]
        assert names(commands.get_failed_commands(hours=2.5, limit=5)) == ["a-fail-2h"]


@pytest.mark.parametrize("query", ["find_by_status", "get_recent_commands",
                                   "get_failed_commands"])
def test_users_and_projects_come_with_the_commands(
    db: Database, history: dict[str, int], count_selects: Callable[..., object], query: str
) -> None:
    """No N+1: reading each command's user and project runs no further query."""
    with db.read_session() as s:
        commands = CommandRepository(s)
        counter = count_selects()
        if query == "find_by_status":
            rows = commands.find_by_status("failed")
        else:
            rows = getattr(commands, query)(hours=72)
        pairs = {(c.user.username if c.user else None, c.project.slug if c.project else None)
                 for c in rows}
        assert counter.selects == 1  # type: ignore[attr-defined]
    assert ("ada", "alpha") in pairs


def test_commands_page_like_any_repository(db: Database, history: dict[str, int]) -> None:
    with db.read_session() as s:
        page = CommandRepository(s).page(2, 4, order_by="-id")
    assert page.total == 6
    assert (page.pages, page.has_prev, page.has_next) == (2, True, False)
    assert len(page.items) == 2


# -- metrics ------------------------------------------------------------------------


def test_record(db: Database, history: dict[str, int]) -> None:
    with db.session() as s:
        metric = MetricRepository(s).record("build.time", 12, type="timer", unit="s",
                                            command=history["a-ok-1h"])
        gauge = MetricRepository(s).record("queue.depth", 3.5)
    assert (metric.value, metric.type, metric.unit) == (12.0, MetricType.TIMER, "s")
    assert metric.command_id == history["a-ok-1h"]
    assert gauge.type is MetricType.GAUGE
    assert gauge.recorded_at.tzinfo is not None
    with db.read_session() as s:
        loaded = MetricRepository(s).get_or_raise(metric.id)
        assert loaded.command is not None
        assert loaded.command.name == "a-ok-1h"


VALUES = [12.0, 3.0, 7.5, 1.0, 20.0, 9.0, 4.0, 15.0, 6.0, 11.0]


def seed_metrics(db: Database, start: dt.datetime) -> None:
    with db.session() as s:
        metrics = MetricRepository(s)
        for i, value in enumerate(VALUES):
            metrics.record("latency", value, type="histogram", unit="ms",
                           recorded_at=start + dt.timedelta(minutes=i))
        metrics.record("latency", 1000.0, recorded_at=start - dt.timedelta(minutes=1))
        metrics.record("latency", 1000.0, recorded_at=start + dt.timedelta(hours=1))
        metrics.record("other", 5000.0, recorded_at=start + dt.timedelta(minutes=1))


def test_aggregate_by_name(db: Database) -> None:
    start = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone.utc)
    seed_metrics(db, start)
    with db.read_session() as s:
        result = MetricRepository(s).aggregate_by_name(
            "latency", start, start + dt.timedelta(hours=1), percentiles=(0.0, 0.5, 0.9, 1.0))
    assert result.count == len(VALUES)  # [start, end): both outliers are outside
    assert result.avg == pytest.approx(statistics.fmean(VALUES))
    assert (result.min, result.max) == (1.0, 20.0)
    expected = statistics.quantiles(VALUES, n=10, method="inclusive")
    assert result.percentiles[0.5] == pytest.approx(statistics.median(VALUES))
    assert result.percentiles[0.9] == pytest.approx(expected[8])
    assert (result.percentiles[0.0], result.percentiles[1.0]) == (1.0, 20.0)
    data = result.to_dict()
    assert data["percentiles"]["p50"] == pytest.approx(8.25)
    assert set(data) == {"name", "count", "avg", "min", "max", "percentiles"}


def test_aggregate_of_nothing_and_of_one(db: Database) -> None:
    start = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    with db.session() as s:
        metrics = MetricRepository(s)
        empty = metrics.aggregate_by_name("latency", start, end)
        metrics.record("latency", 42.0, recorded_at=start)
        single = metrics.aggregate_by_name("latency", start, end)
        bare = metrics.aggregate_by_name("latency", start, end, percentiles=())
    assert (empty.count, empty.avg, empty.min, empty.max, empty.percentiles) == (
        0, None, None, None, {})
    assert single.count == 1
    assert single.percentiles == {0.5: 42.0, 0.95: 42.0, 0.99: 42.0}
    assert bare.percentiles == {}


def test_percentiles_must_be_fractions() -> None:
    with pytest.raises(QueryError):
        rank_positions(10, [95])
    assert rank_positions(5, [0.5]) == {0.5: (3, 4, 0.0)}
