"""``storelayer health``: per engine whether it answers, how fast, which server version,
pool use and replica lag; readiness; an exit status that tells healthy, degraded and
down apart (for probes and scripts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import click

from storelayer.cli.output import emit_json, pairs, section
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.database import Database
from storelayer.health import DEGRADED, DOWN, EngineHealth, HealthReport

#: Exit status: every engine answers and the database is ready.
HEALTHY_EXIT = 0
#: Exit status: the primary does not answer (or refuses the credentials).
DOWN_EXIT = 1
#: Exit status: it answers, but a replica, the pool or the migrations need attention.
DEGRADED_EXIT = 3
#: Kept for callers of the first version: the primary does not answer.
UNHEALTHY = DOWN_EXIT
#: ``--migrations`` value that means the reference schema's migrations.
REFERENCE = "reference"


def exit_status(report: HealthReport) -> int:
    """0 healthy, 3 degraded, 1 down (2 stays the CLI's usage and configuration error)."""
    return {DOWN: DOWN_EXIT, DEGRADED: DEGRADED_EXIT}.get(report.status, HEALTHY_EXIT)


def engine_text(item: EngineHealth) -> str:
    """One engine as aligned ``key  value`` lines."""
    pool = item.pool
    in_use = None
    if "size" in pool:
        in_use = (
            f"{pool.get('checked_out')} of {pool['size']} (+{pool.get('max_overflow')} overflow)"
        )
    values: dict[str, Any] = {
        "reachable": item.reachable,
        "url": item.url,
        "latency": None if item.latency_ms is None else f"{item.latency_ms} ms",
        "server version": item.server_version,
        "pool in use": in_use,
        "replica lag": None if item.replica_lag is None else f"{item.replica_lag:.1f} s",
    }
    if item.error:
        values["error"] = item.error
    return pairs(values, indent=2)


def health_text(report: HealthReport) -> str:
    """The report as readable blocks: the verdict, each engine, the problems."""
    head = pairs(
        {
            "status": report.status.upper() if report.status != "healthy" else "healthy",
            "ready": report.ready,
            "backend": report.backend,
        }
    )
    blocks = [head] + [section(item.role, engine_text(item)) for item in report.engines]
    if report.problems:
        blocks.append(section("problems", "\n".join(f"  - {p}" for p in report.problems)))
    return "\n\n".join(blocks)


@contextmanager
def migration_state(db: Database, directory: str | None) -> Iterator[Any]:
    """The ``MigrationManager`` that readiness checks, or None."""
    if directory is None:
        with nullcontext(None) as nothing:
            yield nothing
        return
    from storelayer.migrations import MigrationManager

    location = None if directory == REFERENCE else directory
    with MigrationManager(db, script_location=location) as manager:
        yield manager


@click.command("health")
@click.option(
    "--migrations",
    "directory",
    metavar="DIR",
    default=None,
    help="Also check that the database is at the heads of this migration directory "
    f"('{REFERENCE}': the reference schema's).",
)
@json_option
@pass_state
@click.pass_context
def health_command(ctx: click.Context, state: CliState, directory: str | None) -> None:
    """Check every engine and readiness. Exit status: 0 healthy, 3 degraded (answers,
    but something needs attention), 1 down; each probe answers within
    STORELAYER_HEALTH_TIMEOUT seconds (default 5)."""
    with state.connect() as db, migration_state(db, directory) as migrations:
        report = db.health(migrations=migrations)
    if state.json:
        emit_json(report.to_dict())
    else:
        click.echo(health_text(report))
    ctx.exit(exit_status(report))
