"""``copy``: a real database no one here wrote (Chinook) moves from SQLite into each
backend with identical row counts and checksums, keys continue after the copy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sample_tables import checksums
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

import storelayer
from storelayer import BackupError, Database
from storelayer.backup import copy_database

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
