"""Units of work: commit on success, roll back on error, savepoints, and
``run_in_transaction``."""

from __future__ import annotations

import pytest

from storelayer.database import Database
from storelayer.errors import Conflict, QueryError
from storelayer.session import Session
from storelayer.testing.suite.fixtures import count_users, seed_users, user_row, usernames
from storelayer.testing.suite.models import ConformanceUser


class Boom(Exception):
    """An application error raised on purpose inside a unit of work."""


def stored_usernames(database: Database) -> list[str]:
    """Every stored username, ordered by key, read in a fresh unit of work."""
    with database.read_session() as s:
        return usernames(s.repository(ConformanceUser).list(order_by="id"))


def test_session_commits_when_the_block_ends(database: Database) -> None:
    with database.session() as s:
        s.repository(ConformanceUser).create(**user_row(1))
        s.repository(ConformanceUser).bulk_create([user_row(2)])
    assert stored_usernames(database) == ["user00001", "user00002"]


def test_exception_rolls_back_the_whole_unit_of_work(database: Database) -> None:
    seed_users(database, 1)
    with pytest.raises(Boom), database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(2))
        users.bulk_create([user_row(3), user_row(4)])
        users.update(users.get_or_raise(1), full_name="changed")
        users.delete_where(username="user00001")
        raise Boom
    assert stored_usernames(database) == ["user00001"]
    with database.read_session() as s:
        assert s.repository(ConformanceUser).get_or_raise(1).full_name == "User 1"


def test_conflict_rolls_back_the_earlier_writes_of_the_unit(database: Database) -> None:
    with pytest.raises(Conflict), database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(1))
        users.create(**user_row(2, email="user00001@example.com"))
    assert count_users(database) == 0


@pytest.mark.requires("savepoints")
def test_failed_savepoint_keeps_the_outer_work(database: Database) -> None:
    with database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(1))
        with pytest.raises(Boom), s.savepoint():
            users.create(**user_row(2))
            users.update(users.get_or_raise(1), full_name="inside the savepoint")
            raise Boom
        users.create(**user_row(3))
    assert stored_usernames(database) == ["user00001", "user00003"]
    with database.read_session() as s:
        assert s.repository(ConformanceUser).get_or_raise(1).full_name == "User 1"


@pytest.mark.requires("savepoints")
def test_conflict_inside_a_savepoint_keeps_the_outer_work(database: Database) -> None:
    seed_users(database, 1)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(2))
        with pytest.raises(Conflict), s.savepoint():
            users.create(**user_row(3, username="user00001"))
        users.create(**user_row(4))
    assert stored_usernames(database) == ["user00001", "user00002", "user00004"]


@pytest.mark.requires("savepoints")
def test_savepoints_nest_and_release(database: Database) -> None:
    with database.session() as s:
        users = s.repository(ConformanceUser)
        with s.savepoint():
            users.create(**user_row(1))
            with pytest.raises(Boom), s.savepoint():
                users.create(**user_row(2))
                raise Boom
            with s.savepoint():
                users.create(**user_row(3))
    assert stored_usernames(database) == ["user00001", "user00003"]


def test_read_session_sees_committed_rows(database: Database) -> None:
    seed_users(database, 3)
    with database.read_session() as s:
        assert s.repository(ConformanceUser).count() == 3


def test_run_in_transaction_commits_and_returns_the_result(database: Database) -> None:
    def work(s: Session) -> int:
        return s.repository(ConformanceUser).create(**user_row(1)).id

    key = database.run_in_transaction(work)
    with database.read_session() as s:
        assert s.repository(ConformanceUser).get_or_raise(key).username == "user00001"


def test_run_in_transaction_does_not_retry_application_errors(database: Database) -> None:
    calls: list[int] = []

    def work(s: Session) -> None:
        calls.append(1)
        s.repository(ConformanceUser).create(**user_row(len(calls)))
        raise Boom

    with pytest.raises(Boom):
        database.run_in_transaction(work, retries=3)
    assert len(calls) == 1
    assert count_users(database) == 0


def test_run_in_transaction_does_not_retry_conflicts(database: Database) -> None:
    seed_users(database, 1)
    calls: list[int] = []

    def work(s: Session) -> None:
        calls.append(1)
        s.repository(ConformanceUser).create(**user_row(2, username="user00001"))

    with pytest.raises(Conflict):
        database.run_in_transaction(work, retries=3)
    assert len(calls) == 1
    assert count_users(database) == 1


def test_autocommit_read_session_reads_committed_rows(database: Database) -> None:
    seed_users(database, 3)
    with database.read_session(autocommit=True) as s:
        users = s.repository(ConformanceUser)
        assert users.count() == 3
        assert users.get_or_raise(1).username == "user00001"
        assert usernames(users.list(order_by="-id", limit=2)) == ["user00003", "user00002"]


def test_stream_needs_a_transaction(database: Database) -> None:
    seed_users(database, 2)
    with (
        database.read_session(autocommit=True) as s,
        pytest.raises(QueryError, match="needs a transaction"),
    ):
        next(iter(s.repository(ConformanceUser).stream()))
