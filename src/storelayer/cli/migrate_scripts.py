"""``storelayer migrate`` commands that write or compare migration scripts: ``init``,
``revision``, ``merge``, ``heads`` and ``check``."""

from __future__ import annotations

from pathlib import Path

import click

from storelayer.cli.migrate import app_on_path, manager, options, revisions_text
from storelayer.cli.output import emit_json
from storelayer.cli.state import CliState, json_option, pass_state

#: Exit status of ``check`` when the models and the migrations disagree.
DIFFERENCES = 1


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--app", "app", required=True, metavar="MODULE:BASE",
              help="Your models: a declarative base or MetaData, e.g. myapp.models:Base.")
@json_option
@pass_state
def init_command(state: CliState, directory: Path, app: str) -> None:
    """Create the migration directory DIRECTORY (env.py, script.py.mako, versions/) for
    the models of --app; nothing connects to a database."""
    from storelayer.migrations.scaffold import init_directory

    app_on_path()
    written = init_directory(directory, app, options().version_table)
    if state.json:
        emit_json({"written": [str(path) for path in written]})
        return
    click.echo("\n".join(f"wrote {path}" for path in written))
    click.echo(f"next: storelayer migrate -d {directory} revision -m 'first tables'")


@click.command("revision")
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


@click.command("check")
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
        click.echo(f"the models and the migrations agree (database at {revisions_text(current)})")
    if differences:
        ctx.exit(DIFFERENCES)


@click.command("heads")
@json_option
@pass_state
def heads_command(state: CliState) -> None:
    """List the newest revisions; more than one means branches to merge."""
    with manager(state) as migrations:
        heads = [info for info in migrations.history() if info.is_head]
    if state.json:
        emit_json([info.to_dict() for info in heads])
        return
    click.echo("\n".join(f"{info.revision}: {info.message}" for info in heads) or "no revision")
    if len(heads) > 1:
        click.echo(f"{len(heads)} heads: join them with 'storelayer migrate merge -m MESSAGE'")


@click.command("merge")
@click.argument("revisions", nargs=-1)
@click.option("-m", "--message", required=True, help="What the merge joins.")
@click.option("--rev-id", default=None, help="Revision id (default: a random one).")
@json_option
@pass_state
def merge_command(state: CliState, revisions: tuple[str, ...], message: str,
                  rev_id: str | None) -> None:
    """Write a migration that joins REVISIONS (default: every head) into one head."""
    with manager(state) as migrations:
        written = migrations.merge(message, revisions or ("heads",), rev_id)
    if state.json:
        emit_json({"written": [str(written)]})
    else:
        click.echo(f"wrote {written}")


COMMANDS = (init_command, revision_command, merge_command, heads_command, check_command)
