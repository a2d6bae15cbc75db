"""``storelayer backup``, ``restore`` and ``verify-backup``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from storelayer.backend import Progress
from storelayer.backup import (
    ARTIFACT_SUFFIX,
    BackupManifest,
    BackupOptions,
    RetentionPolicy,
    create_backup,
    default_artifact_name,
    prune,
    restore_backup,
    verify_backup,
)
from storelayer.backup.children import sigterm_as_interrupt
from storelayer.backup.payload import COMPRESSIONS
from storelayer.cli.output import emit_json, pairs
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.config import parse_url

Say = Callable[[str], None]


def _say(state: CliState) -> Say:
    """Stage messages on stderr, none with ``--json``."""
    if state.json:
        return lambda _message: None
    return lambda message: click.echo(f"storelayer: {message}", err=True)


@contextmanager
def progress_bar(state: CliState, label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr fed by ``progress(done, total)``; none with ``--json``."""
    if state.json:
        yield None
        return
    bar: Any = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def manifest_summary(manifest: BackupManifest) -> dict[str, object]:
    """The manifest's main facts for text output."""
    payload = manifest.payload
    return {
        "backend": f"{manifest.backend} ({manifest.backup_format})",
        "server": manifest.server_version,
        "database": manifest.database,
        "created": manifest.created_at,
        "revision": manifest.schema_revision or None,
        "tables": f"{len(manifest.tables)} ({manifest.total_rows} rows)",
        "size": f"{payload.size} bytes stored, {manifest.dump.size} bytes dumped",
        "compression": payload.compression,
        "encryption": payload.encryption,
        "sha256": payload.sha256,
    }


def _target(db_name: str, path: Path | None, directory: Path | None) -> Path:
    if path is not None and directory is not None:
        raise click.UsageError("give PATH or --dir, not both")
    if path is not None:
        return path
    if directory is None:
        raise click.UsageError("give the artifact PATH, or --dir to name it automatically")
    directory.mkdir(parents=True, exist_ok=True)
    target, stem, n = directory / db_name, db_name.removesuffix(ARTIFACT_SUFFIX), 1
    while target.exists():  # two backups within one second
        n += 1
        target = directory / f"{stem}-{n}{ARTIFACT_SUFFIX}"
    return target


def _recipients(recipient: tuple[str, ...], recipients_file: Path | None) -> list[str]:
    keys = list(recipient)
    if recipients_file is not None:
        lines = recipients_file.read_text().splitlines()
        keys += [k.strip() for k in lines if k.strip() and not k.strip().startswith("#")]
    return keys


@click.command("backup")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write <database>-<UTC time>.storelayer into this directory.",
)
@click.option(
    "--compression", type=click.Choice(list(COMPRESSIONS)), default="zstd", show_default=True
)
@click.option(
    "--recipient",
    "-r",
    multiple=True,
    metavar="AGE1...",
    help="Encrypt to this age public key (repeatable).",
)
@click.option(
    "--recipients-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Encrypt to every age public key in this file.",
)
@click.option(
    "--lock-writes",
    is_flag=True,
    help="Block writers when that is the only way to a consistent dump "
    "(MySQL tables that are not InnoDB); otherwise such a backup is refused.",
)
@click.option("--keep", type=click.IntRange(0), default=0, help="Keep the newest N (with --dir).")
@click.option("--keep-daily", type=click.IntRange(0), default=0, help="Keep one a day for N days.")
@click.option(
    "--keep-weekly", type=click.IntRange(0), default=0, help="Keep one a week for N weeks."
)
@click.option(
    "--keep-monthly", type=click.IntRange(0), default=0, help="Keep one a month for N months."
)
@json_option
@pass_state
def backup_command(
    state: CliState,
    path: Path | None,
    directory: Path | None,
    compression: str,
    recipient: tuple[str, ...],
    recipients_file: Path | None,
    lock_writes: bool,
    keep: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
) -> None:
    """Back up the database into one verified artifact (PATH, or a new file in --dir),
    then prune older artifacts of the same database in --dir by the --keep rules."""
    policy = RetentionPolicy(keep, keep_daily, keep_weekly, keep_monthly)
    if policy.active and directory is None:
        raise click.UsageError("--keep rules prune a directory: use them with --dir")
    with sigterm_as_interrupt(), state.connect() as db:
        target = _target(default_artifact_name(db), path, directory)
        with progress_bar(state, "dumping") as progress:
            manifest = create_backup(
                db,
                target,
                compression=compression,
                recipients=_recipients(recipient, recipients_file),
                options=BackupOptions(lock_writes=lock_writes),
                progress=progress,
                say=_say(state),
            )
        pruned = prune(target.parent, manifest.backend, manifest.database, policy, target)
    if state.json:
        emit_json(
            {
                "path": str(target),
                "manifest": manifest.to_dict(),
                "pruned": [str(p) for p in pruned],
            }
        )
        return
    click.echo(pairs({"written": str(target), **manifest_summary(manifest)}))
    for old in pruned:
        click.echo(f"pruned {old}")


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace a database that is not empty (even at another schema revision).",
)
@click.option(
    "--identity",
    "-i",
    type=click.Path(dir_okay=False, path_type=Path),
    help="age identity file (private key) of an encrypted artifact.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Parallel restore where the backend can (not atomic when > 1).",
)
@json_option
@pass_state
def restore_command(
    state: CliState, path: Path, force: bool, identity: Path | None, jobs: int
) -> None:
    """Restore an artifact into the database: verified first, refused when it comes
    from another backend or the target is not empty (without --force), rows counted
    afterwards."""
    with (
        sigterm_as_interrupt(),
        state.connect() as db,
        progress_bar(state, "restoring") as progress,
    ):
        report = restore_backup(
            db, path, force=force, identity=identity, jobs=jobs, progress=progress, say=_say(state)
        )
    if state.json:
        emit_json(report.to_dict())
        return
    rows = sum(report.tables.values())
    click.echo(
        f"restored {report.path} into {report.database} ({report.backend}): "
        f"{len(report.tables)} tables, {rows} rows, in {report.seconds} s"
    )


@click.command("verify-backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--deep",
    is_flag=True,
    help="Also restore into a scratch database (on --url's server) and count rows.",
)
@click.option(
    "--identity",
    "-i",
    type=click.Path(dir_okay=False, path_type=Path),
    help="age identity file: needed to read an encrypted dump.",
)
@json_option
@pass_state
def verify_command(state: CliState, path: Path, deep: bool, identity: Path | None) -> None:
    """Check an artifact: checksums, a full read of the dump, its row counts; --deep
    restores it into a scratch database too. Exit status 2 when it fails."""
    server_url = None
    if deep and state.url is not None:
        server_url = parse_url(state.url, source="--url")
    elif deep:
        with state.connect() as db:
            server_url = db.url
    with sigterm_as_interrupt():
        report = verify_backup(
            path, identity=identity, deep=deep, server_url=server_url, say=_say(state)
        )
    if state.json:
        emit_json({**report.to_dict(), "ok": True})
        return
    manifest = BackupManifest.from_dict(report.manifest)
    click.echo(
        pairs({"verified": report.path, "checks": report.checks, **manifest_summary(manifest)})
    )
    if not report.dump_read:
        click.echo("warning: the dump was not read (encrypted; pass --identity)", err=True)


COMMANDS = (backup_command, restore_command, verify_command)
