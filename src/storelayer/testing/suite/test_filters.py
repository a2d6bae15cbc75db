"""Keyword lookups, column expressions, ordering, and names or values that try to
smuggle SQL in: checked names only, bound values only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import or_

from storelayer.database import Database
from storelayer.errors import QueryError
from storelayer.repository import LOOKUPS
from storelayer.testing.suite.fixtures import (
    BASE_TIME,
    add_users,
    count_users,
    user_row,
    usernames,
    users_table_exists,
)
from storelayer.testing.suite.models import ConformanceUser

EVERYONE = ["alice", "bob", "carol", "dave", "erin"]


def seed_people(database: Database) -> None:
    """Five users whose columns the lookups below tell apart."""
    add_users(
        database,
        [
            user_row(
                1,
                username="alice",
                full_name="Alice Liddell",
                score=10,
                balance=Decimal("10.5"),
                is_active=True,
            ),
            user_row(
                2,
                username="bob",
                full_name="Bob Dylan",
                score=20,
                balance=Decimal("-3.25"),
                is_active=False,
            ),
            user_row(
                3, username="carol", full_name=None, score=20, balance=Decimal("0"), is_active=True
            ),
            user_row(
                4,
                username="dave",
                full_name="dave grohl",
                score=30,
                balance=Decimal("7.125"),
                is_active=False,
            ),
            user_row(
                5,
                username="erin",
                full_name=None,
                score=40,
                balance=Decimal("1000"),
                is_active=True,
            ),
        ],
    )


LOOKUP_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("eq", {"username": "alice"}, ["alice"]),
    ("eq-explicit", {"username__eq": "bob"}, ["bob"]),
    ("eq-none-is-null", {"full_name": None}, ["carol", "erin"]),
    ("ne", {"username__ne": "alice"}, ["bob", "carol", "dave", "erin"]),
    ("ne-none-is-not-null", {"full_name__ne": None}, ["alice", "bob", "dave"]),
    ("isnull-true", {"full_name__isnull": True}, ["carol", "erin"]),
    ("isnull-false", {"full_name__isnull": False}, ["alice", "bob", "dave"]),
    ("gt", {"score__gt": 20}, ["dave", "erin"]),
    ("gte", {"score__gte": 20}, ["bob", "carol", "dave", "erin"]),
    ("lt", {"score__lt": 20}, ["alice"]),
    ("lte", {"score__lte": 20}, ["alice", "bob", "carol"]),
    ("in-list", {"score__in": [10, 40]}, ["alice", "erin"]),
    ("in-tuple", {"username__in": ("bob",)}, ["bob"]),
    ("in-set", {"username__in": {"carol", "dave"}}, ["carol", "dave"]),
    ("in-empty", {"score__in": []}, []),
    ("not-in", {"score__not_in": [10, 40]}, ["bob", "carol", "dave"]),
    ("not-in-empty", {"score__not_in": []}, EVERYONE),
    ("between-inclusive", {"score__between": (20, 30)}, ["bob", "carol", "dave"]),
    ("between-decimal", {"balance__between": (Decimal("-5"), Decimal("0"))}, ["bob", "carol"]),
    (
        "between-datetime",
        {
            "created_at__between": (
                BASE_TIME + dt.timedelta(minutes=2),
                BASE_TIME + dt.timedelta(minutes=4),
            )
        },
        ["bob", "carol", "dave"],
    ),
    ("gte-datetime", {"created_at__gte": BASE_TIME + dt.timedelta(minutes=4)}, ["dave", "erin"]),
    ("decimal-eq", {"balance": Decimal("7.125")}, ["dave"]),
    ("like", {"full_name__like": "%Dylan"}, ["bob"]),
    ("like-underscore", {"username__like": "_ob"}, ["bob"]),
    ("ilike", {"full_name__ilike": "%GROHL%"}, ["dave"]),
    ("ilike-prefix", {"full_name__ilike": "alice%"}, ["alice"]),
    ("bool-false", {"is_active": False}, ["bob", "dave"]),
    ("bool-true", {"is_active": True}, ["alice", "carol", "erin"]),
    ("combined", {"is_active": True, "score__gte": 20}, ["carol", "erin"]),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [pytest.param(f, e, id=name) for name, f, e in LOOKUP_CASES],
)
def test_lookup(database: Database, filters: dict[str, Any], expected: list[str]) -> None:
    seed_people(database)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        assert usernames(users.list(order_by="id", **filters)) == expected
        assert users.count(**filters) == len(expected)
        assert users.exists(**filters) is bool(expected)


def test_every_lookup_is_covered() -> None:
    covered = {key.partition("__")[2] or "eq" for _, f, _ in LOOKUP_CASES for key in f}
    assert covered == set(LOOKUPS)


def test_column_expressions_filter_alone_and_with_lookups(database: Database) -> None:
    seed_people(database)
    user = ConformanceUser
    with database.read_session() as s:
        users = s.repository(user)
        assert usernames(users.list(user.score > 20, order_by="id")) == ["dave", "erin"]
        either = or_(user.username == "alice", user.score == 40)
        assert usernames(users.list(either, order_by="id")) == ["alice", "erin"]
        assert usernames(users.list(user.score >= 20, is_active=True, order_by="id")) == [
            "carol",
            "erin",
        ]
        assert users.count(user.full_name.is_(None)) == 2


@pytest.mark.parametrize("value", ["score > 3", 3, None, ConformanceUser.score])
def test_positional_filter_that_is_not_an_expression_is_a_query_error(
    database: Database, value: object
) -> None:
    with database.read_session() as s, pytest.raises(QueryError, match="column expressions"):
        s.repository(ConformanceUser).list(value)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        pytest.param({"score__between": 5}, "between", id="between-not-a-pair"),
        pytest.param({"score__between": (1, 2, 3)}, "between", id="between-triple"),
        pytest.param({"full_name__isnull": "yes"}, "isnull", id="isnull-not-bool"),
        pytest.param({"username__in": "alice"}, "list", id="in-a-string"),
        pytest.param({"score__not_in": 5}, "list", id="not-in-a-number"),
    ],
)
def test_bad_lookup_value_is_a_query_error(
    database: Database, filters: dict[str, Any], message: str
) -> None:
    with database.read_session() as s, pytest.raises(QueryError, match=message) as raised:
        s.repository(ConformanceUser).list(**filters)
    given = [v for v in filters.values() if isinstance(v, str)]
    assert not any(v in str(raised.value) for v in given)  # the kind given, not the value


def test_unknown_field_is_a_query_error_listing_valid_names(database: Database) -> None:
    with database.read_session() as s, pytest.raises(QueryError) as raised:
        s.repository(ConformanceUser).list(shoe_size=44)
    message = str(raised.value)
    assert "shoe_size" in message
    for name in ("id", "username", "email", "full_name", "created_at", "score"):
        assert name in message


def test_unknown_lookup_is_a_query_error_listing_valid_lookups(database: Database) -> None:
    with database.read_session() as s, pytest.raises(QueryError) as raised:
        s.repository(ConformanceUser).list(score__regex=".*")
    message = str(raised.value)
    assert "regex" in message
    for lookup in LOOKUPS:
        assert lookup in message


HOSTILE_ORDERINGS = [
    "username; DROP TABLE conformance_users",
    "-id; DELETE FROM conformance_users",
    "id desc",
    "id) OR (1=1",
    "(SELECT 1)",
    "username,",
]
HOSTILE_FILTERS: list[dict[str, Any]] = [
    {"id OR 1=1": 1},
    {"username = '' OR '1'='1' --": "x"},
    {"id; DROP TABLE conformance_users; --": 1},
    {"score__gt OR 1=1": 1},
    {"score__gt__lt": 1},
    {"__class__": 1},
]


@pytest.mark.parametrize("order_by", HOSTILE_ORDERINGS)
def test_hostile_order_by_is_a_query_error_and_touches_nothing(
    database: Database, order_by: str
) -> None:
    seed_people(database)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        with pytest.raises(QueryError) as raised:
            users.list(order_by=order_by)
        assert "valid names" in str(raised.value)
        with pytest.raises(QueryError):
            users.page(order_by=order_by)
        with pytest.raises(QueryError):
            users.keyset(order_by=order_by)
    assert users_table_exists(database)
    assert count_users(database) == len(EVERYONE)


@pytest.mark.parametrize("filters", HOSTILE_FILTERS)
def test_hostile_filter_name_is_a_query_error_and_touches_nothing(
    database: Database, filters: dict[str, Any]
) -> None:
    seed_people(database)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        for method in (users.list, users.count, users.exists, users.get_by, users.delete_where):
            with pytest.raises(QueryError, match="valid"):
                method(**filters)
    assert users_table_exists(database)
    assert count_users(database) == len(EVERYONE)


HOSTILE_VALUES = [
    "O'Brien",
    'say "hi"',
    "'; DROP TABLE conformance_users; --",
    "Robert'); DELETE FROM conformance_users WHERE ('1'='1",
    "1 OR 1=1",
    "back\\slash \\' \\\" \\n",
    "100% _sure_",
    "$1 ? %s :name",
]


def test_values_with_sql_fragments_are_bound_and_stored_verbatim(database: Database) -> None:
    add_users(
        database,
        [user_row(i, full_name=value) for i, value in enumerate(HOSTILE_VALUES, start=1)],
    )
    with database.session() as s:
        users = s.repository(ConformanceUser)
        for i, value in enumerate(HOSTILE_VALUES, start=1):
            found = users.get_by(full_name=value)
            assert found is not None
            assert (found.username, found.full_name) == (f"user{i:05d}", value)
            assert users.count(full_name__in=[value]) == 1
        created = users.create(username="a'; --", email="x@example.com", full_name="'")
        users.update(created, bio=HOSTILE_VALUES[3])
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        again = users.get_by(username="a'; --")
        assert again is not None
        assert again.bio == HOSTILE_VALUES[3]
        assert users.count() == len(HOSTILE_VALUES) + 1
    assert users_table_exists(database)


ORDERINGS: list[tuple[str | list[str], list[str]]] = [
    ("username", ["alice", "bob", "carol", "dave", "erin"]),
    ("-username", ["erin", "dave", "carol", "bob", "alice"]),
    ("+username", ["alice", "bob", "carol", "dave", "erin"]),
    ("score,username", ["alice", "bob", "carol", "dave", "erin"]),
    ("-score,username", ["erin", "dave", "bob", "carol", "alice"]),
    ("-score,-username", ["erin", "dave", "carol", "bob", "alice"]),
    (" -score , username ", ["erin", "dave", "bob", "carol", "alice"]),
    (["-score", "username"], ["erin", "dave", "bob", "carol", "alice"]),
    ("is_active,-balance", ["dave", "bob", "erin", "alice", "carol"]),
    ("-created_at", ["erin", "dave", "carol", "bob", "alice"]),
]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [pytest.param(o, e, id=str(o).strip()) for o, e in ORDERINGS],
)
def test_ordering(database: Database, order_by: str | list[str], expected: list[str]) -> None:
    seed_people(database)
    with database.read_session() as s:
        assert usernames(s.repository(ConformanceUser).list(order_by=order_by)) == expected
