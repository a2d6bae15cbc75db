"""``storelayer migrate``: Alembic migrations of the reference schema (or of your own
directory, ``--directory``) on the configured database, behind the migration lock."""

from __future__ import annotations

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

#: Exit status of ``check`` when the models and the migrations disagree.
DIFFERENCES = 1
OPTIONS_KEY = "storelayer.migrate"
#: Lets a relative revision such as ``-1`` through as an argument, not an option.
RELATIVE_REVISIONS = {"ignore_unknown_options": True}


@dataclass
class MigrateOptions:
    """The ``migrate`` group's own options."""

    directory: Path | None = None
    lock_timeout: float | None = None


def _tell(message: str) -> None:
    click.echo(f"storelayer: {message}", err=True)


@contextmanager
def manager(state: CliState) -> Iterator[MigrationManager]:
    """A ``MigrationManager`` on the configured database, disposed afterwards. (Alembic
    is imported here, not when the CLI starts.)"""
    from storelayer.migrations import DEFAULT_LOCK_TIMEOUT, MigrationManager

    options = click.get_current_context().meta.get(OPTIONS_KEY) or MigrateOptions()
    timeout = DEFAULT_LOCK_TIMEOUT if options.lock_timeout is None else options.lock_timeout
    with state.connect() as db:
        yield MigrationManager(
            db, script_location=options.directory, lock_timeout=timeout, report=_tell
        )


def _revisions(revisions: tuple[str, ...] | list[str]) -> str:
    return ", ".join(revisions) or "base (no migration applied)"


def _steps_text(steps: list[dict[str, Any]], verb: str, current: tuple[str, ...]) -> str:
    if not steps:
        return f"nothing to do: the database is at {_revisions(current)}"
    lines = [f"{verb} {step['revision']}: {step['message']}" for step in steps]
    return "\n".join([*lines, f"the database is at {_revisions(current)}"])


@click.group("migrate")
@click.option(
    "-d", "--directory", type=click.Path(file_okay=False, path_type=Path),
    help="Migration directory (env.py, versions/); default: the reference schema's.",
)
@click.option(
    "--lock-timeout", type=float, default=None, metavar="SECONDS",
    help="Seconds to wait while another process migrates the same database (default 600).",
)
@json_option
@click.pass_context
def migrate_group(
    ctx: click.Context, directory: Path | None, lock_timeout: float | None
) -> None:
    """Upgrade, downgrade and inspect the database schema (Alembic).

    Two processes migrating one database at once are safe: the second waits for the
    first, then finds nothing to do."""
    ctx.meta[OPTIONS_KEY] = MigrateOptions(directory, lock_timeout)


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
    status = "(head)" if up_to_date else f"(head is {_revisions(heads)}: run 'migrate upgrade')"
    click.echo(f"{_revisions(current)} {status}")


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


@migrate_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--autogenerate/--empty", default=True, show_default=True,
              help="Fill in what the models have and the database (at head) lacks.")
@click.option("--rev-id", default=None, help="Revision id (default: a random one).")
@json_option
@pass_state
def revision_command(state: CliState, message: str, autogenerate: bool,
                     rev_id: str | None) -> None:
    """Write a new migration script into the migration directory."""
    with manager(state) as migrations:
        written = migrations.revision(message, autogenerate=autogenerate, rev_id=rev_id)
    if state.json:
        emit_json({"written": [str(path) for path in written]})
    else:
        click.echo("\n".join(f"wrote {path}" for path in written))


@migrate_group.command("check")
@json_option
@pass_state
@click.pass_context
def check_command(ctx: click.Context, state: CliState) -> None:
    """Compare the models with the database at head: exit 0 when they agree, 1 when a
    migration is missing (the differences are listed)."""
    with manager(state) as migrations:
        differences = migrations.check()
        current = migrations.current()
    if state.json:
        emit_json({"clean": not differences, "differences": differences,
                   "current": list(current)})
    elif differences:
        click.echo("\n".join(f"- {line}" for line in differences))
        click.echo(f"{len(differences)} difference(s) between the models and the migrations: "
                   "write a migration (storelayer migrate revision -m '...')")
    else:
        click.echo(f"the models and the migrations agree (database at {_revisions(current)})")
    if differences:
        ctx.exit(DIFFERENCES)
