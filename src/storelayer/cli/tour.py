"""The tour ``storelayer demo`` runs: storelayer at work on its reference schema.

It migrates the configured database to the reference schema's head, then works as a
command-line platform would: a user and a project, a session token, configuration,
commands that run and fail, their metrics and aggregates, pages, the cache. It owns
the rows of user ``demo-ada`` and project ``storelayer-demo`` only, clears them first,
and can run again and again on the same database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import delete, select

from storelayer.config import mask_url
from storelayer.database import Database
from storelayer.migrations import MigrationManager
from storelayer.reference.models import AuditLog, Project, User
from storelayer.reference.repositories import (
    AuditRepository,
    CacheRepository,
    CommandRepository,
    ConfigurationRepository,
    MetricRepository,
    ProjectRepository,
    SessionTokenRepository,
    UserRepository,
)
from storelayer.reference.types import utcnow

Say = Callable[[str], None]
Summary = dict[str, Any]

USERNAME = "demo-ada"
SLUG = "storelayer-demo"
CACHE_PREFIX = "storelayer-demo:"
METRIC = "storelayer-demo.command.duration"
PER_PAGE = 5
#: (command, exit code, milliseconds it ran) of the commands the demo "runs".
RUNS = [
    ("build", 0, 1200), ("test", 0, 5400), ("lint", 0, 800), ("test", 1, 6100),
    ("deploy", 0, 9000), ("build", 0, 1100), ("test", 0, 5200), ("docs", 0, 2500),
    ("deploy", 2, 3000), ("lint", 0, 700), ("build", 0, 1300), ("test", 0, 5000),
]


class Written(NamedTuple):
    """Keys the later steps read back."""

    user: int
    project: int
    started: dt.datetime


def _cell(value: object) -> str:
    """One value in a sentence: ``-`` for nothing, ``yes``/``no``, lists comma-joined."""
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def migrate(db: Database, say: Say) -> Summary:
    """Bring the database to the reference schema's head."""
    manager = MigrationManager(db, report=say)
    applied = manager.upgrade()
    current = list(manager.current())
    if applied:
        done = ", ".join(f"{step['revision']} ({step['message']})" for step in applied)
        say(f"1. migrate: applied {done}; the schema is at {_cell(current)}")
    else:
        say(f"1. migrate: nothing to do, the schema is already at {_cell(current)}")
    return {"applied": [step["revision"] for step in applied], "current": current}


def prepare(db: Database, say: Say) -> Summary:
    """Delete the rows of an earlier run (its user, project, their commands, cache)."""
    with db.session() as s:
        user = s.scalar(select(User.id).where(User.username == USERNAME))
        project = s.scalar(select(Project.id).where(Project.slug == SLUG))
        leftover = 0
        if project is not None:
            leftover = CommandRepository(s).delete_where(project_id=project)
        if user is not None:
            s.execute(delete(AuditLog).where(AuditLog.actor_id == user))
            s.execute(delete(User).where(User.id == user))  # cascades to project, tokens
        CacheRepository(s).delete_where(key__like=f"{CACHE_PREFIX}%")
    cleared = f"cleared {leftover} commands of an earlier run" if leftover else "nothing to clear"
    say(f"2. setup: {cleared}")
    return {"cleared_commands": leftover}


def write(db: Database, say: Say) -> tuple[Written, Summary]:
    """A user, their project, a session token, settings and an audit record: one unit."""
    with db.session() as s:
        ada = UserRepository(s).create_user(
            USERNAME, "ada@example.com", "correct horse battery staple",
            full_name="Ada Lovelace",
        )
        project = ProjectRepository(s).create_project(
            "storelayer demo", SLUG, ada, repository_url="https://example.com/demo.git"
        )
        issued = SessionTokenRepository(s).issue(ada, ttl_seconds=3600)
        settings = ConfigurationRepository(s)
        settings.set_value(project, "build.parallel", 4)
        settings.set_value(project, "notify", {"on": ["failure"], "channel": "#builds"})
        AuditRepository(s).record("project.create", "project", project.id, actor=ada,
                                  details={"slug": SLUG}, ip="127.0.0.1")
    with db.read_session() as s:
        verified = SessionTokenRepository(s).verify(issued.secret)
        configured = ConfigurationRepository(s).values(project)
    say(f"3. write: user {ada.username} (#{ada.id}, shown as {ada.display_name!r}) owns "
        f"project {project.slug} (#{project.id}); session token "
        f"{'verified' if verified else 'REJECTED'}; settings {_cell(sorted(configured))}")
    written = Written(ada.id, project.id, utcnow() - dt.timedelta(minutes=len(RUNS)))
    return written, {"user": ada.id, "project": project.id, "token_verified": bool(verified),
                     "settings": configured}


def run_commands(db: Database, say: Say, written: Written) -> Summary:
    """Run the commands: each starts, then completes (or fails), and records a timer."""
    with db.session() as s:
        commands, metrics = CommandRepository(s), MetricRepository(s)
        for minute, (name, exit_code, millis) in enumerate(RUNS):
            started = written.started + dt.timedelta(minutes=minute)
            command = commands.start_command(name, ["--ci"], user=written.user,
                                             project=written.project, started_at=started)
            finished = started + dt.timedelta(milliseconds=millis)
            if exit_code == 2:
                commands.fail_command(command, "deploy target unreachable", exit_code=2,
                                      finished_at=finished)
            else:
                commands.complete_command(command, exit_code=exit_code, stdout=f"{name} ok",
                                          finished_at=finished)
            metrics.record(METRIC, command.duration_ms or 0, type="timer", unit="ms",
                           command=command, recorded_at=finished)
    with db.read_session() as s:
        failed = CommandRepository(s).get_failed_commands(hours=1)
    mine = [c for c in failed if c.project is not None and c.project.slug == SLUG]
    names = [f"{c.name} (exit {c.exit_code}, by {c.user.username if c.user else '?'})"
             for c in mine]
    say(f"4. commands: ran {len(RUNS)}; {len(mine)} failed in the last hour: {_cell(names)}")
    return {"ran": len(RUNS), "failed": len(mine)}


def aggregate(db: Database, say: Say, written: Written) -> Summary:
    """Count, mean, extremes and percentiles of the durations, computed in SQL."""
    with db.read_session() as s:
        result = MetricRepository(s).aggregate_by_name(
            METRIC, written.started - dt.timedelta(hours=1), utcnow() + dt.timedelta(hours=1)
        )
    p = {key: round(value) for key, value in result.to_dict()["percentiles"].items()}
    say(f"5. aggregate: {result.count} durations, avg {round(result.avg or 0)} ms, "
        f"min {round(result.min or 0)} ms, max {round(result.max or 0)} ms, "
        f"p50 {p.get('p50')} ms, p95 {p.get('p95')} ms")
    return {**result.to_dict(), "percentiles": p}


def page(db: Database, say: Say, written: Written) -> Summary:
    """The first and the last page of the project's commands, newest first."""
    with db.read_session() as s:
        commands = CommandRepository(s)
        first = commands.page(1, PER_PAGE, project_id=written.project, order_by="-id")
        last = commands.page(first.pages or 1, PER_PAGE, project_id=written.project,
                             order_by="-id")
    say(f"6. page: {first.total} commands in {first.pages} pages of {PER_PAGE}; page 1 holds "
        f"{_cell([c.name for c in first.items])} (has_next={_cell(first.has_next)}); "
        f"page {last.page} holds {len(last.items)} (has_prev={_cell(last.has_prev)})")
    return {"total": first.total, "pages": first.pages, "per_page": PER_PAGE,
            "first_page": [c.id for c in first.items], "last_page_size": len(last.items)}


def cache(db: Database, say: Say, written: Written) -> Summary:
    """Cache a summary for a minute, let another entry expire, purge the expired."""
    key = f"{CACHE_PREFIX}project:{written.project}:summary"
    with db.session() as s:
        entries = CacheRepository(s)
        entries.set_cache(key, {"commands": len(RUNS)}, ttl_seconds=60)
        entries.set_cache(f"{CACHE_PREFIX}stale", "old", ttl_seconds=-1)
        hit = entries.get_cache(key)
        stale = entries.get_cache(f"{CACHE_PREFIX}stale")
        purged = entries.purge_expired()
    say(f"7. cache: {key} -> {hit}; the expired entry reads as {stale!r}; purged {purged}")
    return {"hit": hit, "expired_read": stale, "purged": purged}


def health(db: Database, say: Say) -> Summary:
    """The same check as ``storelayer health``."""
    report = db.health()
    state = "healthy" if report.healthy else f"UNHEALTHY ({report.error})"
    say(f"8. health: {state}; round trip {_cell(report.latency_ms)} ms, "
        f"server {_cell(report.server_version)}")
    return report.to_dict()


def run_tour(db: Database, say: Say) -> Summary:
    """Every step in order; the summary is what ``--json`` prints."""
    say(f"storelayer demo on {mask_url(db.url)} (backend {db.backend.name})")
    steps = {"migrate": migrate(db, say), "setup": prepare(db, say)}
    written, steps["write"] = write(db, say)
    steps["commands"] = run_commands(db, say, written)
    steps["aggregate"] = aggregate(db, say, written)
    steps["page"] = page(db, say, written)
    steps["cache"] = cache(db, say, written)
    steps["health"] = health(db, say)
    return {"database": mask_url(db.url), "backend": db.backend.name, "steps": steps}
