"""``storelayer demo``: a guided tour of the repository API on the configured database.

It owns the ``storelayer_demo_*`` tables only, clears its own rows first and can run
again and again on the same database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import click
from sqlalchemy import delete

from storelayer.cli.demo_models import Author, DemoBase, Note
from storelayer.cli.output import cell, emit_json
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.config import mask_url
from storelayer.database import Database

Say = Callable[[str], None]
Summary = dict[str, Any]

PER_PAGE = 5
AUTHORS = (
    {"name": "Ada Lovelace", "email": "ada@example.com"},
    {"name": "Grace Hopper", "email": "grace@example.com"},
)


class Written(NamedTuple):
    """Ids the later steps read back."""

    ada: int
    grace: int
    first_note: int


def note_row(number: int, author_id: int, revised: bool = False) -> dict[str, Any]:
    """The values of demo note ``number``."""
    title = f"Note {number}" + (" (revised)" if revised else "")
    return {"slug": f"note-{number:02d}", "title": title,
            "body": f"Body of note {number}.", "author_id": author_id}


def prepare(db: Database, say: Say) -> Summary:
    """Create the demo tables when missing and clear the rows of an earlier run."""
    DemoBase.metadata.create_all(db.engine)
    with db.session() as s:
        leftover = s.repository(Note).count()
        s.execute(delete(Note))
        s.execute(delete(Author))
    tables = sorted(DemoBase.metadata.tables)
    cleared = f"cleared {leftover} notes of an earlier run" if leftover else "nothing to clear"
    say(f"1. setup: tables {', '.join(tables)} are ready; {cleared}")
    return {"tables": tables, "cleared_notes": leftover}


def write(db: Database, say: Say) -> tuple[Written, Summary]:
    """Create two authors and ten notes in one unit of work."""
    with db.session() as s:
        authors, notes = s.repository(Author), s.repository(Note)
        ada, grace = (authors.create(**values) for values in AUTHORS)
        created = [notes.create(**note_row(n, ada.id)) for n in range(1, 8)]
        created += [notes.create(**note_row(n, grace.id)) for n in range(8, 11)]
    say(f"2. write: created authors {ada.name} (#{ada.id}) and {grace.name} (#{grace.id}) "
        f"and {len(created)} notes in one committed unit of work")
    written = Written(ada.id, grace.id, created[0].id)
    return written, {"authors": [ada.id, grace.id], "notes_created": len(created)}


def read(db: Database, say: Say, written: Written) -> Summary:
    """Get one note by id, list an author's newest notes and count them."""
    with db.read_session() as s:
        notes = s.repository(Note)
        first = notes.get(written.first_note)
        latest = notes.list(author_id=written.ada, order_by="-id", limit=PER_PAGE)
        total = notes.count(author_id=written.ada)
    title = first.title if first is not None else None
    slugs = [n.slug for n in latest]
    say(f"3. read: note #{written.first_note} is {title!r}; Ada has {total} notes, "
        f"the newest {len(slugs)}: {cell(slugs)}")
    return {"note": written.first_note, "title": title, "ada_notes": total, "latest": slugs}


def upsert(db: Database, say: Say, written: Written) -> Summary:
    """Insert-or-update by slug: two existing notes are revised, four are new."""
    rows = [note_row(n, written.ada, revised=True) for n in (1, 2)]
    rows += [note_row(n, written.grace) for n in range(11, 15)]
    with db.session() as s:
        notes = s.repository(Note)
        before = notes.count()
        notes.upsert_many(rows, on=["slug"])
        after = notes.count()
    inserted = after - before
    say(f"4. upsert: {len(rows)} rows on slug: {len(rows) - inserted} updated in place, "
        f"{inserted} inserted; {after} notes now")
    return {"rows": len(rows), "updated": len(rows) - inserted, "inserted": inserted,
            "total": after}


def page(db: Database, say: Say) -> Summary:
    """The first and the last page of all notes."""
    with db.read_session() as s:
        notes = s.repository(Note)
        first = notes.page(page=1, per_page=PER_PAGE)
        last = notes.page(page=first.pages or 1, per_page=PER_PAGE)
    say(f"5. page: {first.total} notes in {first.pages} pages of {PER_PAGE}; "
        f"page 1 holds {cell([n.slug for n in first.items])} "
        f"(has_next={cell(first.has_next)}, has_prev={cell(first.has_prev)}); "
        f"page {last.page} holds {len(last.items)} "
        f"(has_next={cell(last.has_next)}, has_prev={cell(last.has_prev)})")
    return {"total": first.total, "pages": first.pages, "per_page": PER_PAGE,
            "first_page": [n.slug for n in first.items], "last_page_size": len(last.items)}


def health(db: Database, say: Say) -> Summary:
    """The same check as ``storelayer health``."""
    report = db.health()
    state = "healthy" if report.healthy else f"UNHEALTHY ({report.error})"
    say(f"6. health: {state}; round trip {cell(report.latency_ms)} ms, "
        f"server {cell(report.server_version)}")
    return report.to_dict()


def run_demo(db: Database, say: Say) -> Summary:
    """Every step in order; the summary is what ``--json`` prints."""
    say(f"storelayer demo on {mask_url(db.url)} (backend {db.backend.name})")
    steps = {"setup": prepare(db, say)}
    written, steps["write"] = write(db, say)
    steps["read"] = read(db, say, written)
    steps["upsert"] = upsert(db, say, written)
    steps["page"] = page(db, say)
    steps["health"] = health(db, say)
    return {"database": mask_url(db.url), "backend": db.backend.name, "steps": steps}


def _quiet(_line: str) -> None:
    """The narrative is dropped when ``--json`` asks for one document."""


@click.command("demo")
@json_option
@pass_state
def demo_command(state: CliState) -> None:
    """Create demo tables and tour the repository API: write, read, upsert, page, health.

    Uses the configured database (./storelayer.db when DATABASE_URL is unset), touches
    only its own storelayer_demo_* tables, and can be run any number of times."""
    with state.connect() as db:
        summary = run_demo(db, _quiet if state.json else click.echo)
    if state.json:
        emit_json(summary)
