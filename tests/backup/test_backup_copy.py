"""``copy``: a real database no one here wrote (Chinook) moves from SQLite into each
backend with identical row counts and checksums, keys continue after the copy; the
data-only mode fills a migrated target; a failed copy leaves the target as it was, and
a killed one's leftovers are removed by the next."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from sample_tables import checksums
from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)

import storelayer
from storelayer import BackupError, Database
from storelayer.backup.counts import table_names
from storelayer.copy import SchemaSource, copy_database, prune_stale
from storelayer.copy.marker import MARKER, mark


@contextmanager
def marker_owned_by(db: Database, pid: int) -> Iterator[None]:
    """A copy's marker in ``db`` as process ``pid`` would have left it; the block's
    tables count as created by that copy."""
    with mock.patch("storelayer.copy.marker.os.getpid", return_value=pid):
        mark(db.engine)  # never unmarked: as if the process was killed
    yield


CHINOOK_ROWS = {
    "Album": 347,
    "Artist": 275,
    "Customer": 59,
    "Employee": 8,
    "Genre": 25,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "MediaType": 5,
    "Playlist": 18,
    "PlaylistTrack": 8715,
    "Track": 3503,
}


def test_chinook_copies_with_identical_rows_and_checksums(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    seen: list[tuple[int, int | None]] = []
    report = copy_database(
        f"sqlite:///{chinook}",
        target.url,
        batch_size=500,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert {n: t["rows"] for n, t in report.tables.items()} == CHINOOK_ROWS
    assert seen[-1] == (sum(CHINOOK_ROWS.values()), sum(CHINOOK_ROWS.values()))
    with storelayer.connect(f"sqlite:///{chinook}") as source:
        expected = checksums(source)
    assert checksums(target) == expected
    assert {n: c[1] for n, c in expected.items()} == {
        n: t["checksum"] for n, t in report.tables.items()
    }
    genre = MetaData()
    genre.reflect(target.engine, only=["Genre"])
    table = genre.tables["Genre"]
    with target.engine.begin() as connection:
        connection.execute(insert(table), {"Name": "added after the copy"})
        new_id = connection.execute(
            select(table.c.GenreId).where(table.c.Name == "added after the copy")
        ).scalar_one()
    assert new_id == 26


def test_copy_refuses_a_target_with_the_same_tables(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    Table("Genre", MetaData(), Column("id", Integer, primary_key=True)).create(target.engine)
    with pytest.raises(BackupError, match="already has tables Genre"):
        copy_database(f"sqlite:///{chinook}", target.url)


def _genre_with_check(refused: str = "") -> MetaData:
    metadata = MetaData()
    genre = Table(
        "Genre",
        metadata,
        Column("GenreId", Integer, primary_key=True),
        Column("Name", String(120)),
    )
    genre.append_constraint(CheckConstraint(genre.c.Name != refused, name="ck_genre_refused"))
    return metadata


def test_data_only_fills_a_migrated_target(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    _genre_with_check().create_all(target.engine)
    source = f"sqlite:///{chinook}"
    trimmed = chinook.parent / "genres.db"
    with storelayer.connect(f"sqlite:///{trimmed}") as small:
        _genre_with_check().create_all(small.engine)
        with storelayer.connect(source) as full, full.engine.connect() as reading:
            rows = [dict(r._mapping) for r in reading.execute(text('SELECT * FROM "Genre"'))]
        with small.engine.begin() as writing:
            writing.execute(insert(_genre_with_check().tables["Genre"]), rows)
    report = copy_database(f"sqlite:///{trimmed}", target.url, schema=SchemaSource(data_only=True))
    assert report.tables["Genre"]["rows"] == 25
    assert report.schema.startswith("already in the target")
    assert table_names(target.engine) == ["Genre"]  # nothing created, no marker left
    with pytest.raises(BackupError, match="already have rows"):
        copy_database(f"sqlite:///{trimmed}", target.url, schema=SchemaSource(data_only=True))


def test_data_only_needs_every_source_table(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    _genre_with_check().create_all(target.engine)
    with pytest.raises(BackupError, match="lacks the tables Album, Artist"):
        copy_database(f"sqlite:///{chinook}", target.url, schema=SchemaSource(data_only=True))
    assert table_names(target.engine) == ["Genre"]


def test_failed_data_only_copy_leaves_no_row(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    """The target refuses a row halfway through: the copy's one transaction is rolled
    back and the error says the target is as it was."""
    target = new_database()
    _genre_with_check("Opera").create_all(target.engine)
    source = f"sqlite:///{chinook}"
    with storelayer.connect(source) as db:
        only_genre = chinook.parent / "genre.db"
        with storelayer.connect(f"sqlite:///{only_genre}") as small, db.engine.connect() as c:
            _genre_with_check().create_all(small.engine)
            rows = [dict(r._mapping) for r in c.execute(text('SELECT * FROM "Genre"'))]
            with small.engine.begin() as writing:
                writing.execute(insert(_genre_with_check().tables["Genre"]), rows)
    with pytest.raises(BackupError, match="rolled back: the target is as it was"):
        copy_database(
            f"sqlite:///{only_genre}", target.url, schema=SchemaSource(data_only=True),
            batch_size=10,
        )
    with target.engine.connect() as connection:
        genre = _genre_with_check().tables["Genre"]
        assert connection.execute(select(func.count()).select_from(genre)).scalar_one() == 0


def test_a_killed_copys_tables_are_dropped_by_the_next(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    """What a SIGKILLed copy leaves (its marker naming a dead process, the tables it
    created) is dropped before the next copy starts, which says so."""
    target = new_database()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with marker_owned_by(target, int(dead.stdout)):
        Table("Genre", MetaData(), Column("id", Integer, primary_key=True)).create(target.engine)
    heard: list[str] = []
    report = copy_database(f"sqlite:///{chinook}", target.url, say=heard.append)
    assert report.rows == sum(CHINOOK_ROWS.values())
    assert any("dropped 1 tables left by a killed copy" in line for line in heard)
    assert MARKER not in table_names(target.engine)


def test_a_live_copy_is_not_disturbed(
    chinook: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    with (
        marker_owned_by(target, os.getpid()),
        pytest.raises(BackupError, match="another copy .* is filling this database"),
    ):
        copy_database(f"sqlite:///{chinook}", target.url)
    assert table_names(target.engine) == [MARKER]  # its own, untouched
    with pytest.raises(BackupError, match="another copy"):
        prune_stale(target.engine)
