"""The ``storelayer`` command: global options, then one subcommand per module."""

from __future__ import annotations

import click

from storelayer import __version__
from storelayer.cli import backup as backup_commands
from storelayer.cli import dump as dump_commands
from storelayer.cli.copy import copy_command
from storelayer.cli.dbshell import dbshell_command
from storelayer.cli.demo import demo_command
from storelayer.cli.group import StorelayerGroup
from storelayer.cli.health import health_command
from storelayer.cli.info import info_command
from storelayer.cli.inspect import inspect_command
from storelayer.cli.migrate import migrate_group
from storelayer.cli.migrate_scripts import COMMANDS as MIGRATE_SCRIPT_COMMANDS
from storelayer.cli.plugins import plugins_command
from storelayer.cli.state import CliState


@click.group(cls=StorelayerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="Database URL; overrides DATABASE_URL.")
@click.option("--backend", metavar="NAME", help="Backend by name; overrides STORELAYER_BACKEND.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON document.")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(__version__, prog_name="storelayer")
@click.pass_context
def cli(ctx: click.Context, url: str | None, backend: str | None, as_json: bool,
        debug: bool) -> None:
    """storelayer: one storage layer over SQLite, PostgreSQL, MySQL and plugin backends.

    Passwords in URLs are always masked in the output."""
    state = ctx.ensure_object(CliState)
    state.url, state.backend, state.debug = url, backend, debug
    state.json = state.json or as_json


for command in (info_command, inspect_command, plugins_command, health_command, migrate_group,
                demo_command, dbshell_command):
    cli.add_command(command)
for command in MIGRATE_SCRIPT_COMMANDS:
    migrate_group.add_command(command)
for command in (*dump_commands.COMMANDS, *backup_commands.COMMANDS, copy_command):
    cli.add_command(command)


def main() -> None:
    """The console script ``storelayer`` and ``python -m storelayer``."""
    cli.main(prog_name="storelayer")
