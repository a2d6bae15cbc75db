"""``storelayer copy``: one database into another, keeping the application's schema.

On a terminal the rows' progress is a rich bar on stderr and the status lines print
above it (never through it); off a terminal there is no bar; with ``--json`` stderr
stays quiet and stdout holds the one JSON document."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from storelayer.backend import Progress as ProgressCallback
from storelayer.backup.children import sigterm_as_interrupt
from storelayer.cli.migrate import app_on_path
from storelayer.cli.output import emit_json
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.config import mask_url, parse_url
from storelayer.errors import BackupError

if TYPE_CHECKING:
    from storelayer.copy import SchemaSource

Say = Callable[[str], None]


class CopyDisplay:
    """Status lines and a progress bar on stderr that do not mix: the bar is a rich
    live display, lines print above it; no bar off a terminal, nothing with --json."""

    def __init__(self, quiet: bool, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self._bar: Progress | None = None
        self._task: Any = None

    def say(self, message: str) -> None:
        """One status line (above the bar while one shows)."""
        if self.quiet:
            return
        target = self._bar.console if self._bar is not None else self.console
        target.print(f"storelayer: {message}", markup=False, soft_wrap=True)

    def progress(self, done: int, total: int | None) -> None:
        """``progress(done, total)`` of the rows."""
        if self.quiet or not self.console.is_terminal:
            return
        if self._bar is None:
            self._bar = Progress(
                TextColumn("copying rows"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=self.console, transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("rows", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        """Take the bar off the screen."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    @contextmanager
    def shown(self) -> Iterator[CopyDisplay]:
        """The display, closed however the block ends."""
        try:
            yield self
        finally:
            self.close()


def _schema(app: str | None, directory: Path | None, version_table: str,
            data_only: bool) -> SchemaSource:
    from storelayer.copy import SchemaSource

    models = None
    if app is not None:
        from storelayer.migrations.scaffold import app_metadata

        app_on_path()
        models = app_metadata(app)[2]
    if directory is not None:
        app_on_path()
    return SchemaSource(models, directory, data_only, version_table)


def _prune(target: str, display: CopyDisplay, state: CliState) -> None:
    from storelayer._core import opened
    from storelayer.copy import prune_stale as remove_leftovers

    with opened(parse_url(target, source="--to")) as dst:
        lines = remove_leftovers(dst.engine)
    if state.json:
        emit_json({"pruned": lines})
        return
    for line in lines or ["no leftovers of a killed copy"]:
        display.say(line)


@click.command("copy")
@click.option("--from", "source", metavar="URL", help="Database to read.")
@click.option("--to", "target", required=True, metavar="URL", help="Database to fill.")
@click.option("--app", metavar="MODULE:NAME",
              help="The application's models (declarative base or MetaData): the target's "
              "schema is created from them, rows are read and written through them.")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path),
              help="The application's migration directory: the target is migrated to the "
              "source's revision before the rows move.")
@click.option("--version-table", default="alembic_version", show_default=True,
              help="Where the migrations record their revision.")
@click.option("--data-only", is_flag=True,
              help="Fill the target's existing, empty tables (migrate it first); create "
              "nothing.")
@click.option("--prune-stale", is_flag=True,
              help="Only drop what a killed copy left in --to, then stop.")
@click.option("--batch-size", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check every table's rows by checksum before committing; with "
              "--no-verify only their counts are checked (faster; a value changed on the "
              "way would go unseen).")
@json_option
@pass_state
def copy_command(state: CliState, source: str | None, target: str, app: str | None,
                 directory: Path | None, version_table: str, data_only: bool,
                 prune_stale: bool, batch_size: int, verify: bool) -> None:
    """Copy one database into another, across backends, keeping the application's
    schema; rows move in one transaction, checked by count and checksum per table."""
    display = CopyDisplay(quiet=state.json)
    if prune_stale:
        _prune(target, display, state)
        return
    if source is None:
        raise click.UsageError("give --from URL (or --prune-stale)")
    if parse_url(source, source="--from") == parse_url(target, source="--to"):
        raise BackupError("--from and --to name the same database")
    known = _schema(app, directory, version_table, data_only)
    from storelayer.copy import CopyInterrupted, copy_database  # Alembic: only when copying

    try:
        with sigterm_as_interrupt(), display.shown(), _without_cycle_collection():
            report = copy_database(source, target, schema=known, batch_size=batch_size,
                                   progress=_progress(display), say=display.say,
                                   checksums=verify)
    except CopyInterrupted as stopped:
        raise BackupError(stopped.outcome) from None  # one line, exit status 2
    if state.json:
        emit_json(report.to_dict())
        return
    for note in report.notes:
        display.say(f"note: {note}")
    click.echo(
        f"copied {len(report.tables)} tables, {report.rows} rows from "
        f"{mask_url(source)} ({report.source}) to {mask_url(target)} ({report.target}) "
        f"in {report.seconds} s; schema: {report.schema}; "
        + ("row counts and checksums match" if verify else "row counts match (--no-verify)")
    )


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The cycle collector off while the copy runs, in this process of ours: it would
    walk the batches' millions of short-lived values (a sixth of the time of reading the
    target back) and find no cycle to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _progress(display: CopyDisplay) -> ProgressCallback:
    return display.progress
