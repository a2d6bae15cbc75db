"""``copy_database``: one database into another, across backends, keeping the
application's schema. The target gets its schema (see :mod:`storelayer.copy.schema`),
then the rows move in one transaction that commits only once every table's row count
and checksum match the source's. A copy that fails, or is stopped (Ctrl-C, SIGTERM),
leaves the target as it found it and says so; after a SIGKILL the next copy into the
target removes what the killed one created."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from storelayer._conflicts import one_line
from storelayer._core import EngineCore, opened
from storelayer.backend import Progress
from storelayer.copy.marker import MARKER, drop_tables, marked, prune_stale
from storelayer.copy.rows import fill
from storelayer.copy.schema import Plan, SchemaSource, plan
from storelayer.errors import BackupError, StorelayerError
from storelayer.plugins import PluginManager

Say = Callable[[str], None]
DEFAULT_BATCH_SIZE = 1000
#: What the target holds after a copy stopped while rows moved into existing tables.
ROLLED_BACK = "its transaction was rolled back: the target is as it was"


@dataclass
class CopyReport:
    """What ``copy_database`` copied: rows and checksum per table, where the schema came
    from, and what it left out."""

    source: str
    target: str
    schema: str = ""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Seconds of each stage: ``rows`` (moving them, the source's checksums taken as
    #: they pass), ``verify`` (the target's rows read back and their checksums
    #: compared), ``commit``, and ``setup`` (the rest: connecting, the schema).
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows copied in all tables."""
        return sum(int(t["rows"]) for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {**asdict(self), "rows": self.rows}


class CopyInterrupted(KeyboardInterrupt):
    """The copy was stopped (Ctrl-C, SIGTERM); ``outcome`` says what became of the
    target."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _quiet(_message: str) -> None:
    """Stage messages are dropped unless the caller listens."""


def _failed(error: BaseException, outcome: str) -> BaseException:
    if isinstance(error, KeyboardInterrupt):
        return CopyInterrupted(f"the copy was stopped and undone: {outcome}")
    if isinstance(error, (StorelayerError, SQLAlchemyError)):
        return BackupError(f"the copy failed and was undone ({outcome}): {one_line(error)}")
    return error


@contextmanager
def undone_on_failure(dst: EngineCore, created: Callable[[], set[str]]) -> Iterator[None]:
    """If the block fails or is stopped, drop the tables ``created()`` names (the rows
    were rolled back already), and say what was undone."""
    try:
        yield
    except BaseException as error:
        names = created()
        drop_tables(dst.engine, names)
        outcome = (
            f"the {len(names)} tables it created in the target were dropped"
            if names else ROLLED_BACK
        )
        raised = _failed(error, outcome)
        if raised is error:
            raise
        raise raised from None


def copy_database(
    source_url: str | URL,
    target_url: str | URL,
    *,
    schema: SchemaSource | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
    checksums: bool = True,
) -> CopyReport:
    """Copy ``source_url`` into ``target_url``: the schema from the models or migrations
    where ``schema`` (or the reference schema's revision in the source) says what it
    is, reflected otherwise; with ``schema.data_only`` into the tables the target has
    (empty ones). Rows are checked by count and checksum before they commit (by count
    only with ``checksums=False``: faster, but a value changed on the way goes unseen)."""
    started = time.monotonic()
    known = schema or SchemaSource()
    with opened(source_url, plugins=plugins) as src, opened(target_url, plugins=plugins) as dst:
        for line in prune_stale(dst.engine):
            say(line)
        copy_plan = plan(src.engine, dst.engine, known)
        report = CopyReport(src.backend.name, dst.backend.name, copy_plan.origin)
        fill_rows = partial(fill, checksums=checksums)
        expected = _run(src, dst, copy_plan, fill_rows, batch_size, progress, say, report.phases)
    report.notes = copy_plan.notes
    report.tables = {
        n: {"rows": c.rows, "checksum": c.hexdigest if checksums else None}
        for n, c in expected.items()
    }
    report.seconds = round(time.monotonic() - started, 3)
    report.phases["setup"] = round(report.seconds - sum(report.phases.values()), 3)
    return report


def _run(
    src: EngineCore,
    dst: EngineCore,
    copy_plan: Plan,
    fill_rows: Callable[..., dict[str, Any]],
    batch_size: int,
    progress: Progress | None,
    say: Say,
    phases: dict[str, float],
) -> dict[str, Any]:
    if copy_plan.create is None:
        copy_plan.typed_from(dst.engine)
        with undone_on_failure(dst, set):
            return fill_rows(src, dst, copy_plan.tables, batch_size, progress, say, phases)
    with marked(dst.engine) as before:
        _refuse_collisions(before, copy_plan)
        with undone_on_failure(dst, lambda: _created(dst, before)):
            say(f"creating the schema on {dst.backend.name} ({copy_plan.origin})")
            copy_plan.create(dst.engine)
            copy_plan.typed_from(dst.engine)
            return fill_rows(src, dst, copy_plan.tables, batch_size, progress, say, phases)


def _created(dst: EngineCore, before: frozenset[str]) -> set[str]:
    dst.engine.dispose()
    with dst.engine.connect() as connection:
        return set(inspect(connection).get_table_names()) - before - {MARKER}


def _refuse_collisions(before: frozenset[str], copy_plan: Plan) -> None:
    wanted = set(copy_plan.tables.tables) | set(copy_plan.source_tables)
    clash = sorted(before & wanted)
    if clash:
        raise BackupError(
            f"the target already has tables {', '.join(clash)}: copy into an empty database, "
            "or migrate the target first and copy with --data-only (nothing was changed)"
        )
