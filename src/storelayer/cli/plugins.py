"""``storelayer plugins``: every plugin seen, and what it provides or why it does not."""

from __future__ import annotations

from collections.abc import Sequence

import click

from storelayer.cli.output import emit_json, table
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.plugins import PluginInfo, get_plugin_manager

HEADERS = ("NAME", "DISTRIBUTION", "VERSION", "BACKENDS", "SCHEMES", "STATUS", "ERROR")


def plugins_table(infos: Sequence[PluginInfo]) -> str:
    """The plugins as an aligned text table."""
    rows = [
        (i.name, i.distribution, i.version, i.backends, i.schemes, i.status, i.error)
        for i in infos
    ]
    return table(HEADERS, rows)


@click.command("plugins")
@json_option
@pass_state
def plugins_command(state: CliState) -> None:
    """List every storelayer plugin: loaded, broken (with the error) or disabled."""
    infos = get_plugin_manager().plugins()
    if state.json:
        emit_json([info.to_dict() for info in infos])
    else:
        click.echo(plugins_table(infos))
