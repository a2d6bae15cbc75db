"""Commit markers on MySQL/MariaDB: a unit that wrote carries a marker row in its own
transaction, and a new connection tells from it whether the unit committed, waiting for
a transaction the server still runs; a unit that wrote nothing costs nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

import storelayer
from storelayer import Backend, Database
from storelayer.testing.server_suite import scratch_url as scratch_url  # a fixture
from storelayer_mysql import MySQLBackend

ops = MySQLBackend.ops


@pytest.fixture(scope="module")
def server_backend() -> Backend:
    return MySQLBackend()


@pytest.fixture
def db(scratch_url: URL) -> Iterator[Database]:
    with storelayer.connect(scratch_url) as database:
        with database.engine.begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS outcome_probe")
            c.exec_driver_sql("CREATE TABLE outcome_probe (id int PRIMARY KEY)")
        yield database


def write(db: Database, key: int) -> tuple[Connection, Any]:
    """An open unit that wrote row ``key``: (its connection, its marker)."""
    connection = db.engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO outcome_probe VALUES (:k)"), {"k": key})
    return connection, ops.commit_marker(connection)


def test_the_marker_tells_committed_and_rolled_back(db: Database) -> None:
    with db.engine.connect() as reader:
        reader.begin()
        reader.execute(text("SELECT count(*) FROM outcome_probe")).scalar()
        assert ops.commit_marker(reader) is None  # nothing written, no marker, no trip
    committed_unit, committed_marker = write(db, 1)
    committed_unit.commit()
    committed_unit.close()
    rolled_back, rolled_back_marker = write(db, 2)
    rolled_back.rollback()
    rolled_back.close()
    with db.engine.connect() as asker:
        assert ops.committed(asker, committed_marker) is True
    with db.engine.connect() as asker:
        assert ops.committed(asker, rolled_back_marker) is False


def test_asking_waits_for_a_transaction_still_in_progress(db: Database) -> None:
    unit, marker = write(db, 3)
    answers: list[bool | None] = []

    def ask() -> None:
        with db.engine.connect() as asker:
            answers.append(ops.committed(asker, marker))

    asking = threading.Thread(target=ask)
    asking.start()
    time.sleep(0.5)
    assert answers == []  # the marker row is locked by the unit
    unit.commit()
    unit.close()
    asking.join(30)
    assert answers == [True]


def test_a_connection_numbers_its_units(db: Database) -> None:
    with db.engine.connect() as connection:
        markers = []
        for key in (10, 11):
            connection.begin()
            connection.execute(text("INSERT INTO outcome_probe VALUES (:k)"), {"k": key})
            markers.append(ops.commit_marker(connection))
            connection.commit()
    (first_id, first_seq), (second_id, second_seq) = markers
    assert first_id == second_id and second_seq == first_seq + 1
    with db.engine.connect() as asker:
        assert ops.committed(asker, markers[0]) is True  # an earlier unit, also committed
