"""``storelayer health``: can the primary be reached, how fast, which server version."""

from __future__ import annotations

import click

from storelayer.cli.output import emit_json, pairs
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.database import HealthReport

#: Exit status when the database is unreachable or unhealthy.
UNHEALTHY = 1


def health_text(report: HealthReport) -> str:
    """The report as aligned ``key  value`` lines."""
    latency = None if report.latency_ms is None else f"{report.latency_ms} ms"
    values = {
        "status": "healthy" if report.healthy else "UNHEALTHY",
        "backend": report.backend,
        "url": report.url,
        "latency": latency,
        "server version": report.server_version,
    }
    if report.error:
        values["error"] = report.error
    return pairs(values)


@click.command("health")
@json_option
@pass_state
@click.pass_context
def health_command(ctx: click.Context, state: CliState) -> None:
    """Check that the database answers; exit status 0 when healthy, 1 when not."""
    with state.connect() as db:
        report = db.health()
    if state.json:
        emit_json(report.to_dict())
    else:
        click.echo(health_text(report))
    if not report.healthy:
        ctx.exit(UNHEALTHY)
