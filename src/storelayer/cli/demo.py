"""``storelayer demo``: a guided tour of storelayer on its reference schema.

The tour itself is ``storelayer.cli.tour``; it is imported when the command runs,
so that the rest of the CLI never loads the reference schema.
"""

from __future__ import annotations

import click

from storelayer.cli.output import emit_json
from storelayer.cli.state import CliState, json_option, pass_state


def _quiet(_line: str) -> None:
    """The narrative is dropped when ``--json`` asks for one document."""


@click.command("demo")
@json_option
@pass_state
def demo_command(state: CliState) -> None:
    """Migrate to the reference schema and tour it: users, projects, commands, metrics,
    aggregates, pages, cache, health.

    Uses the configured database (./storelayer.db when DATABASE_URL is unset), touches
    only its own demo rows, and can be run any number of times."""
    from storelayer.cli.tour import run_tour

    with state.connect() as db:
        summary = run_tour(db, _quiet if state.json else click.echo)
    if state.json:
        emit_json(summary)
