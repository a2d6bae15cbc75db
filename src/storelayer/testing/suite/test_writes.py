"""Bulk inserts and updates, and ``upsert_many``: every backend must leave the same
rows behind, so each test reads the rows back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert

from storelayer.database import Database
from storelayer.errors import Conflict, QueryError
from storelayer.testing.suite.fixtures import (
    BASE_TIME,
    as_utc,
    count_users,
    seed_users,
    user_row,
    usernames,
)
from storelayer.testing.suite.models import (
    ConformanceCounter,
    ConformanceMembership,
    ConformanceUser,
)


def snapshot(database: Database) -> dict[str, tuple[object, ...]]:
    """username -> (id, email, full_name, score, is_active) of every user."""
    with database.read_session() as s:
        return {
            u.username: (u.id, u.email, u.full_name, u.score, u.is_active)
            for u in s.repository(ConformanceUser).list(order_by="id")
        }


@pytest.mark.requires("returning")
def test_insert_returning_gives_back_the_new_row(database: Database) -> None:
    statement = insert(ConformanceCounter).values(value=7).returning(ConformanceCounter.id)
    with database.engine.begin() as connection:  # what the database and its dialect do
        key = connection.execute(statement).scalar_one()
    with database.read_session() as s:
        assert s.repository(ConformanceCounter).get_or_raise(key).value == 7


# -- bulk_create / bulk_update ------------------------------------------------------------


def test_bulk_create_inserts_dicts_and_applies_defaults(database: Database) -> None:
    rows = [{"username": f"u{i}", "email": f"u{i}@example.com"} for i in range(50)]
    with database.session() as s:
        assert s.repository(ConformanceUser).bulk_create(rows) == 50
    with database.read_session() as s:
        users = s.repository(ConformanceUser).list(order_by="id")
    assert usernames(users) == [f"u{i}" for i in range(50)]
    assert all(u.is_active is True and u.score == 0 for u in users)
    assert all(u.created_at is not None and u.balance == 0 for u in users)


def test_bulk_create_accepts_instances_and_mixed_key_sets(database: Database) -> None:
    rows: list[object] = [
        ConformanceUser(username="a", email="a@example.com", score=1),
        {"username": "b", "email": "b@example.com", "full_name": "Bee"},
        {"username": "c", "email": "c@example.com"},
        {"username": "d", "email": "d@example.com", "full_name": "Dee", "score": 4},
    ]
    with database.session() as s:
        assert s.repository(ConformanceUser).bulk_create(rows) == 4  # type: ignore[arg-type]
    got = snapshot(database)
    assert [(k, v[2], v[3]) for k, v in got.items()] == [
        ("a", None, 1),
        ("b", "Bee", 0),
        ("c", None, 0),
        ("d", "Dee", 4),
    ]


def test_bulk_create_of_nothing_is_zero(database: Database) -> None:
    with database.session() as s:
        assert s.repository(ConformanceUser).bulk_create([]) == 0
    assert count_users(database) == 0


def test_bulk_create_with_a_duplicate_is_a_conflict_and_writes_nothing(
    database: Database,
) -> None:
    rows = [user_row(1), user_row(2), user_row(3, username="user00001")]
    with pytest.raises(Conflict), database.session() as s:
        s.repository(ConformanceUser).bulk_create(rows)
    assert count_users(database) == 0


def test_bulk_create_with_an_unknown_column_is_a_query_error(database: Database) -> None:
    with pytest.raises(QueryError, match="valid names"), database.session() as s:
        s.repository(ConformanceUser).bulk_create([{"username": "a", "email": "a@x", "age": 3}])
    assert count_users(database) == 0


def test_bulk_update_by_primary_key(database: Database) -> None:
    seed_users(database, 5)
    with database.session() as s:
        updated = s.repository(ConformanceUser).bulk_update(
            [{"id": 1, "score": 100}, {"id": 3, "score": 300, "full_name": "Three"}]
        )
        assert updated == 2
    got = snapshot(database)
    assert [v[3] for v in got.values()] == [100, 2, 300, 4, 5]
    assert got["user00003"][2] == "Three"
    assert got["user00002"][2] == "User 2"


def test_bulk_update_rows_need_the_primary_key(database: Database) -> None:
    seed_users(database, 2)
    with pytest.raises(QueryError, match="primary key"), database.session() as s:
        s.repository(ConformanceUser).bulk_update([{"id": 1, "score": 7}, {"score": 9}])
    assert [v[3] for v in snapshot(database).values()] == [1, 2]


# -- upsert_many --------------------------------------------------------------------------


@pytest.mark.requires("upsert")
def test_upsert_inserts_new_rows(database: Database) -> None:
    rows = [user_row(i) for i in range(1, 6)]
    with database.session() as s:
        assert s.repository(ConformanceUser).upsert_many(rows, on=["username"]) == 5
    got = snapshot(database)
    assert list(got) == [f"user{i:05d}" for i in range(1, 6)]
    assert [v[3] for v in got.values()] == [1, 2, 3, 4, 5]


@pytest.mark.requires("upsert")
def test_upsert_applies_column_defaults_to_inserted_rows(database: Database) -> None:
    with database.session() as s:
        s.repository(ConformanceUser).upsert_many(
            [{"username": "n", "email": "n@example.com"}], on=["username"]
        )
    with database.read_session() as s:
        user = s.repository(ConformanceUser).get_by(username="n")
    assert user is not None
    assert (user.is_active, user.score, user.balance) == (True, 0, Decimal("0"))
    assert user.created_at is not None


@pytest.mark.requires("upsert")
def test_upsert_updates_existing_rows_and_inserts_the_rest(database: Database) -> None:
    seed_users(database, 2)
    before = snapshot(database)
    rows = [
        user_row(1, full_name="One again", score=10),
        user_row(2, full_name="Two again", score=20),
        user_row(3, full_name="Three", score=30),
        user_row(4, full_name="Four", score=40),
    ]
    with database.session() as s:
        assert s.repository(ConformanceUser).upsert_many(rows, on=["username"]) == 4
    after = snapshot(database)
    assert list(after) == [f"user{i:05d}" for i in range(1, 5)]
    assert [(v[2], v[3]) for v in after.values()] == [
        ("One again", 10),
        ("Two again", 20),
        ("Three", 30),
        ("Four", 40),
    ]
    assert after["user00001"][0] == before["user00001"][0], "the existing row kept its key"
    assert after["user00002"][0] == before["user00002"][0]


@pytest.mark.requires("upsert")
def test_upsert_update_path_leaves_unlisted_columns_alone(database: Database) -> None:
    created = BASE_TIME - dt.timedelta(days=365)
    seed_users(database, 1, created_at=created, is_active=False)
    with database.session() as s:
        s.repository(ConformanceUser).upsert_many(
            [{"username": "user00001", "email": "user00001@example.com", "score": 5}],
            on=["username"],
        )
    with database.read_session() as s:
        user = s.repository(ConformanceUser).get_by(username="user00001")
    assert user is not None
    assert user.score == 5
    assert user.is_active is False, "a column default overwrote an existing value"
    assert as_utc(user.created_at) == created


@pytest.mark.requires("upsert")
def test_upsert_update_subset(database: Database) -> None:
    seed_users(database, 2)
    rows = [user_row(1, full_name="ignored", score=10), user_row(3, full_name="new", score=30)]
    with database.session() as s:
        s.repository(ConformanceUser).upsert_many(rows, on=["username"], update=["score"])
    got = snapshot(database)
    assert got["user00001"][2:4] == ("User 1", 10)
    assert got["user00002"][2:4] == ("User 2", 2)
    assert got["user00003"][2:4] == ("new", 30), "inserted rows take every given column"


@pytest.mark.requires("upsert")
def test_upsert_with_empty_update_leaves_existing_rows_alone(database: Database) -> None:
    seed_users(database, 2)
    before = snapshot(database)
    rows = [user_row(1, full_name="ignored", score=10), user_row(3, full_name="new", score=30)]
    with database.session() as s:
        assert s.repository(ConformanceUser).upsert_many(rows, on=["username"], update=[]) == 2
    after = snapshot(database)
    assert after["user00001"] == before["user00001"]
    assert after["user00002"] == before["user00002"]
    assert after["user00003"][2:4] == ("new", 30)
    assert len(after) == 3


@pytest.mark.requires("upsert")
def test_upsert_on_the_primary_key_and_on_a_composite_key(database: Database) -> None:
    seed_users(database, 1)
    with database.session() as s:
        s.repository(ConformanceUser).upsert_many(
            [{"id": 1, "username": "renamed", "email": "r@example.com"}], on=["id"]
        )
        members = s.repository(ConformanceMembership)
        members.create(tenant="acme", member_id=1, role="viewer")
        members.upsert_many(
            [
                {"tenant": "acme", "member_id": 1, "role": "owner"},
                {"tenant": "acme", "member_id": 2, "role": "viewer"},
            ],
            on=["tenant", "member_id"],
        )
    assert list(snapshot(database)) == ["renamed"]
    with database.read_session() as s:
        members = s.repository(ConformanceMembership)
        roles = [(m.member_id, m.role) for m in members.list(order_by="tenant,member_id")]
    assert roles == [(1, "owner"), (2, "viewer")]


@pytest.mark.requires("upsert")
def test_upsert_refreshes_instances_already_loaded(database: Database) -> None:
    seed_users(database, 1)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        loaded = users.get_or_raise(1)
        assert loaded.score == 1
        users.upsert_many([user_row(1, score=77)], on=["username"])
        assert loaded.score == 77
        assert users.get_or_raise(1).score == 77


@pytest.mark.requires("upsert")
def test_upsert_more_rows_than_one_statement_binds(database: Database) -> None:
    total = 12_000  # x 3 columns: more parameters than one statement may bind
    rows = [{"username": f"u{i}", "email": f"u{i}@x", "score": i} for i in range(total)]
    with database.session() as s:
        assert s.repository(ConformanceUser).upsert_many(rows, on=["username"]) == total
    changed = [{"username": f"u{i}", "email": f"u{i}@x", "score": -i} for i in range(total)]
    with database.session() as s:
        s.repository(ConformanceUser).upsert_many(changed, on=["username"], update=["score"])
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        assert users.count() == total
        assert users.count(score__gt=0) == 0


@pytest.mark.requires("upsert")
@pytest.mark.parametrize(
    ("update", "new_row", "existing_row"),
    [
        pytest.param(None, ("second", 2), ("b", 20), id="update-all"),
        pytest.param(["score"], ("first", 2), ("User 1", 20), id="update-subset"),
        pytest.param([], ("first", 1), ("User 1", 1), id="update-nothing"),
    ],
)
def test_upsert_of_a_key_given_twice_acts_as_one_upsert_after_another(
    database: Database,
    update: list[str] | None,
    new_row: tuple[str, int],
    existing_row: tuple[str, int],
) -> None:
    seed_users(database, 1)
    rows = [
        user_row(7, full_name="first", score=1),
        user_row(1, full_name="a", score=10),
        user_row(7, full_name="second", score=2),
        user_row(1, full_name="b", score=20),
    ]
    with database.session() as s:
        assert s.repository(ConformanceUser).upsert_many(rows, on=["username"], update=update) == 4
    got = snapshot(database)
    assert list(got) == ["user00001", "user00007"]
    assert got["user00007"][2:4] == new_row
    assert got["user00001"][2:4] == existing_row


@pytest.mark.parametrize(
    ("on", "message"),
    [
        pytest.param(["full_name"], "not a primary key or unique", id="non-unique"),
        pytest.param(["score", "is_active"], "not a primary key or unique", id="non-unique-pair"),
        pytest.param(["nickname"], "valid names", id="unknown"),
        pytest.param(["username; DROP TABLE conformance_users"], "valid names", id="hostile"),
    ],
)
def test_upsert_on_columns_that_are_not_unique_is_a_query_error(
    database: Database, on: list[str], message: str
) -> None:
    seed_users(database, 2)
    before = snapshot(database)
    rows = [user_row(1, score=99), user_row(5)]
    with pytest.raises(QueryError, match=message), database.session() as s:
        s.repository(ConformanceUser).upsert_many(rows, on=on)
    assert snapshot(database) == before


def test_upsert_rows_without_the_conflict_columns_are_a_query_error(database: Database) -> None:
    with pytest.raises(QueryError, match="conflict columns"), database.session() as s:
        s.repository(ConformanceUser).upsert_many(
            [{"email": "a@example.com", "score": 1}], on=["username"]
        )
    assert count_users(database) == 0


def test_upsert_update_naming_an_unknown_column_is_a_query_error(database: Database) -> None:
    with pytest.raises(QueryError, match="valid names"), database.session() as s:
        s.repository(ConformanceUser).upsert_many(
            [user_row(1)], on=["username"], update=["score", "karma"]
        )
    assert count_users(database) == 0
