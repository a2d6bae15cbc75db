"""``storelayer migrate``: Alembic migrations of the reference schema (or of your own
directory, ``--directory``) on the configured database, behind the migration lock.

The working directory is on the import path, as for ``python -m``: an ``env.py`` imports
the application's models from where the command runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storelayer.cli.output import emit_json, table
from storelayer.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from storelayer.migrations import MigrationManager

OPTIONS_KEY = "storelayer.migrate"
#: Lets a relative revision such as ``-1`` through as an argument, not an option.
RELATIVE_REVISIONS = {"ignore_unknown_options": True}


@dataclass
class MigrateOptions:
    """The ``migrate`` group's own options."""

    directory: Path | None = None
    lock_timeout: float | None = None
    version_table: str | None = None


def app_on_path() -> None:
    """Put the working directory on the import path, where ``python -m`` puts it."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def options() -> MigrateOptions:
    """The ``migrate`` group's options of the command in progress."""
    found: MigrateOptions | None = click.get_current_context().meta.get(OPTIONS_KEY)
    return found or MigrateOptions()


def _tell(message: str) -> None:
    click.echo(f"storelayer: {message}", err=True)


@contextmanager
def manager(state: CliState) -> Iterator[MigrationManager]:
    """A ``MigrationManager`` on the configured database, disposed afterwards. (Alembic
    is imported here, not when the CLI starts.)"""
    from storelayer.migrations import DEFAULT_LOCK_TIMEOUT, MigrationManager

    chosen = options()
    timeout = DEFAULT_LOCK_TIMEOUT if chosen.lock_timeout is None else chosen.lock_timeout
    app_on_path()
    with state.connect() as db:
        yield MigrationManager(
            db, script_location=chosen.directory, version_table=chosen.version_table,
            lock_timeout=timeout, report=_tell,
        )


def revisions_text(revisions: tuple[str, ...] | list[str]) -> str:
    return ", ".join(revisions) or "base (no migration applied)"


def _steps_text(steps: list[dict[str, Any]], verb: str, current: tuple[str, ...]) -> str:
    if not steps:
        return f"nothing to do: the database is at {revisions_text(current)}"
    lines = [f"{verb} {step['revision']}: {step['message']}" for step in steps]
    return "\n".join([*lines, f"the database is at {revisions_text(current)}"])


@click.group("migrate")
@click.option(
    "-d", "--directory", type=click.Path(file_okay=False, path_type=Path),
    help="Migration directory (env.py, versions/); default: the reference schema's.",
)
@click.option(
    "--lock-timeout", type=float, default=None, metavar="SECONDS",
    help="Seconds to wait while another process migrates the same database (default 600).",
)
@click.option(
    "--version-table", default=None, metavar="NAME",
    help="Table that records the applied revisions (one per application sharing a "
    "database); default: the one env.py names, else alembic_version.",
)
@json_option
@click.pass_context
def migrate_group(
    ctx: click.Context, directory: Path | None, lock_timeout: float | None,
    version_table: str | None,
) -> None:
    """Upgrade, downgrade and inspect the database schema (Alembic).

    Two processes migrating one database at once are safe: the second waits for the
    first, then finds nothing to do."""
    ctx.meta[OPTIONS_KEY] = MigrateOptions(directory, lock_timeout, version_table)


def _apply(state: CliState, verb: str, action: str, revision: str) -> None:
    with manager(state) as migrations:
        steps = getattr(migrations, action)(revision)
        current = migrations.current()
    if state.json:
        emit_json({"applied": steps, "current": list(current)})
    else:
        click.echo(_steps_text(steps, verb, current))


@migrate_group.command("upgrade", context_settings=RELATIVE_REVISIONS)
@click.argument("revision", default="head")
@json_option
@pass_state
def upgrade_command(state: CliState, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    _apply(state, "upgraded", "upgrade", revision)


@migrate_group.command("downgrade", context_settings=RELATIVE_REVISIONS)
@click.argument("revision")
@json_option
@pass_state
def downgrade_command(state: CliState, revision: str) -> None:
    """Undo migrations down to REVISION ('-1': one step, 'base': all of them)."""
    _apply(state, "downgraded", "downgrade", revision)


@migrate_group.command("stamp", context_settings=RELATIVE_REVISIONS)
@click.argument("revision")
@json_option
@pass_state
def stamp_command(state: CliState, revision: str) -> None:
    """Record REVISION as applied without running any migration."""
    _apply(state, "stamped", "stamp", revision)


@migrate_group.command("current")
@json_option
@pass_state
def current_command(state: CliState) -> None:
    """Show the revision the database is at, and whether that is the head."""
    with manager(state) as migrations:
        current, heads = migrations.current(), migrations.heads()
    up_to_date = set(current) == set(heads)
    if state.json:
        emit_json({"current": list(current), "heads": list(heads), "up_to_date": up_to_date,
                   "directory": str(migrations.script_location)})
        return
    status = "(head)" if up_to_date else f"(head is {revisions_text(heads)}: run 'migrate upgrade')"
    click.echo(f"{revisions_text(current)} {status}")


@migrate_group.command("history")
@json_option
@pass_state
def history_command(state: CliState) -> None:
    """List the migrations, newest first."""
    with manager(state) as migrations:
        revisions = migrations.history()
    if state.json:
        emit_json([info.to_dict() for info in revisions])
        return
    rows = [
        (info.revision, list(info.down_revisions) or "base",
         ", ".join(n for n, on in (("head", info.is_head), ("current", info.is_current)) if on),
         info.message)
        for info in revisions
    ]
    click.echo(table(("REVISION", "REVISES", "STATE", "MESSAGE"), rows))
