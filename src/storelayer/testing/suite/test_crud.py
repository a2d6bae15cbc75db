"""Create, read, update and delete through the generic repository, on integer, UUID
and composite primary keys, and the errors a write that breaks a constraint raises."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import true

from storelayer.database import Database
from storelayer.errors import Conflict, NotFound, QueryError
from storelayer.testing.suite.fixtures import count_users, seed_users, user_row, usernames
from storelayer.testing.suite.models import (
    ConformanceChild,
    ConformanceMembership,
    ConformanceParent,
    ConformanceToken,
    ConformanceUser,
)


def test_create_returns_the_row_with_its_generated_key(database: Database) -> None:
    with database.session() as s:
        created = s.repository(ConformanceUser).create(**user_row(1))
        assert isinstance(created.id, int)
        key = created.id
    with database.read_session() as s:
        found = s.repository(ConformanceUser).get(key)
        assert found is not None
        assert (found.username, found.email) == ("user00001", "user00001@example.com")
        assert found.score == 1


def test_create_applies_column_defaults(database: Database) -> None:
    with database.session() as s:
        created = s.repository(ConformanceUser).create(username="d", email="d@example.com")
        key = created.id
    with database.read_session() as s:
        found = s.repository(ConformanceUser).get_or_raise(key)
        assert found.is_active is True
        assert found.score == 0
        assert found.created_at is not None
        assert found.full_name is None


def test_create_with_an_unknown_field_is_a_query_error_listing_valid_names(
    database: Database,
) -> None:
    with pytest.raises(QueryError) as raised, database.session() as s:
        s.repository(ConformanceUser).create(username="x", email="x@example.com", nickname="x")
    assert "nickname" in str(raised.value)
    assert "username" in str(raised.value)
    assert count_users(database) == 0


def test_get_returns_none_for_a_missing_key(database: Database) -> None:
    with database.read_session() as s:
        assert s.repository(ConformanceUser).get(12345) is None


def test_get_or_raise_names_the_model_and_key(database: Database) -> None:
    with pytest.raises(NotFound) as raised, database.read_session() as s:
        s.repository(ConformanceUser).get_or_raise(12345)
    assert "ConformanceUser" in str(raised.value)
    assert "12345" in str(raised.value)


def test_get_by_finds_one_row_or_none(database: Database) -> None:
    seed_users(database, 3)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        found = users.get_by(username="user00002")
        assert found is not None
        assert found.email == "user00002@example.com"
        assert users.get_by(username="nobody") is None
        assert users.get_by(ConformanceUser.email == "user00003@example.com") is not None


def test_get_by_matching_several_rows_is_a_query_error(database: Database) -> None:
    seed_users(database, 3, is_active=True)
    with pytest.raises(QueryError, match="several"), database.read_session() as s:
        s.repository(ConformanceUser).get_by(is_active=True)


def test_uuid_primary_key_is_generated_and_found(database: Database) -> None:
    with database.session() as s:
        token = s.repository(ConformanceToken).create(label="api")
        key = token.id
    assert isinstance(key, uuid.UUID)
    with database.read_session() as s:
        tokens = s.repository(ConformanceToken)
        found = tokens.get(key)
        assert found is not None
        assert found.id == key
        assert found.label == "api"
        assert tokens.get(uuid.uuid4()) is None
        assert tokens.count(id__in=[key, uuid.uuid4()]) == 1


def test_composite_primary_key_get_update_delete(database: Database) -> None:
    with database.session() as s:
        members = s.repository(ConformanceMembership)
        members.create(tenant="acme", member_id=1, role="owner")
        members.create(tenant="acme", member_id=2, role="viewer")
        members.create(tenant="initech", member_id=1, role="viewer")
    with database.session() as s:
        members = s.repository(ConformanceMembership)
        found = members.get_or_raise(("acme", 1))
        assert found.role == "owner"
        members.update(found, role="admin")
        members.delete(members.get_or_raise(("initech", 1)))
        assert members.get(("initech", 2)) is None
    with database.read_session() as s:
        members = s.repository(ConformanceMembership)
        assert members.get_or_raise(("acme", 1)).role == "admin"
        assert members.get(("initech", 1)) is None
        assert members.count() == 2


def test_update_writes_the_values(database: Database) -> None:
    seed_users(database, 1)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        user = users.get_by(username="user00001")
        assert user is not None
        returned = users.update(user, full_name="Renamed", score=99)
        assert returned is user
    with database.read_session() as s:
        user = s.repository(ConformanceUser).get_by(username="user00001")
        assert user is not None
        assert (user.full_name, user.score) == ("Renamed", 99)


def test_update_with_an_unknown_field_is_a_query_error(database: Database) -> None:
    seed_users(database, 1)
    with pytest.raises(QueryError, match="valid names"), database.session() as s:
        users = s.repository(ConformanceUser)
        users.update(users.get_or_raise(1), shoe_size=44)


def test_delete_removes_the_row(database: Database) -> None:
    seed_users(database, 2)
    with database.session() as s:
        users = s.repository(ConformanceUser)
        users.delete(users.get_or_raise(1))
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        assert users.get(1) is None
        assert usernames(users.list()) == ["user00002"]


def test_delete_where_deletes_matching_rows_and_counts_them(database: Database) -> None:
    seed_users(database, 10)
    with database.session() as s:
        assert s.repository(ConformanceUser).delete_where(score__gt=7) == 3
    with database.session() as s:
        assert s.repository(ConformanceUser).delete_where(ConformanceUser.score <= 2) == 2
    assert count_users(database) == 5
    with database.session() as s:
        assert s.repository(ConformanceUser).delete_where(true()) == 5
    assert count_users(database) == 0


def test_delete_where_without_a_filter_is_refused(database: Database) -> None:
    seed_users(database, 3)
    with pytest.raises(QueryError, match="filter"), database.session() as s:
        s.repository(ConformanceUser).delete_where()
    assert count_users(database) == 3


def test_count_exists_and_list_with_limit_offset(database: Database) -> None:
    seed_users(database, 7)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        assert users.count() == 7
        assert users.count(score__gte=5) == 3
        assert users.exists(username="user00007")
        assert not users.exists(username="user00008")
        window = users.list(order_by="id", limit=3, offset=2)
        assert usernames(window) == ["user00003", "user00004", "user00005"]
        assert users.list(order_by="id", limit=0) == []


@pytest.mark.parametrize("bad", [-1, "3", 2.5, True])
def test_bad_limit_or_offset_is_a_query_error(database: Database, bad: object) -> None:
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        with pytest.raises(QueryError):
            users.list(limit=bad)  # type: ignore[arg-type]
        with pytest.raises(QueryError):
            users.list(offset=bad)  # type: ignore[arg-type]


@pytest.mark.requires("constraint_names")
def test_duplicate_unique_value_is_a_conflict_naming_the_constraint(database: Database) -> None:
    seed_users(database, 1)
    with pytest.raises(Conflict) as raised, database.session() as s:
        s.repository(ConformanceUser).create(**user_row(2, username="user00001"))
    assert raised.value.constraint is not None
    assert "username" in raised.value.constraint
    assert count_users(database) == 1


def test_duplicate_primary_key_is_a_conflict(database: Database) -> None:
    with database.session() as s:
        s.repository(ConformanceMembership).create(tenant="acme", member_id=1, role="owner")
    with pytest.raises(Conflict), database.session() as s:
        s.repository(ConformanceMembership).create(tenant="acme", member_id=1, role="viewer")
    with database.read_session() as s:
        assert s.repository(ConformanceMembership).get_or_raise(("acme", 1)).role == "owner"


@pytest.mark.requires("foreign_keys")
def test_foreign_key_violation_on_insert_is_a_conflict(database: Database) -> None:
    with pytest.raises(Conflict), database.session() as s:
        s.repository(ConformanceChild).create(parent_id=424242, name="orphan")
    with database.read_session() as s:
        assert s.repository(ConformanceChild).count() == 0


@pytest.mark.requires("foreign_keys")
def test_deleting_a_referenced_row_is_a_conflict(database: Database) -> None:
    with database.session() as s:
        parent = s.repository(ConformanceParent).create(name="p")
        s.repository(ConformanceChild).create(parent_id=parent.id, name="c")
    with pytest.raises(Conflict), database.session() as s:
        s.repository(ConformanceParent).delete_where(name="p")
    with pytest.raises(Conflict), database.session() as s:
        parents = s.repository(ConformanceParent)
        parents.delete(parents.get_or_raise(parent.id))
    with database.read_session() as s:
        assert s.repository(ConformanceParent).count() == 1
        assert s.repository(ConformanceChild).count() == 1
