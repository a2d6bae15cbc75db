"""Users, projects, session tokens and the audit log, on every backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from storelayer.database import Database
from storelayer.errors import Conflict, QueryError
from storelayer.reference import User
from storelayer.reference.passwords import hash_password, verify_password
from storelayer.reference.repositories import (
    AuditRepository,
    ProjectRepository,
    SessionTokenRepository,
    UserRepository,
)
from storelayer.reference.types import utcnow

PEOPLE = [
    ("ada", "Ada@Example.COM", "Ada Lovelace", True),
    ("grace", "grace@example.com", "Grace Hopper", True),
    ("alan", "alan@example.com", None, False),
    ("edsger_w", "edsger@example.com", "Edsger 100% Dijkstra", True),
]


def add_people(db: Database) -> dict[str, User]:
    with db.session() as s:
        users = UserRepository(s)
        return {
            name: users.create_user(name, email, "pw", full_name=full, is_active=active)
            for name, email, full, active in PEOPLE
        }


# -- users --------------------------------------------------------------------------


def test_create_user_hashes_the_password_and_fills_the_display_name(db: Database) -> None:
    people = add_people(db)
    ada = people["ada"]
    assert ada.id is not None
    assert ada.email == "ada@example.com"  # compared the same way on every backend
    assert ada.password_hash != b"pw"
    assert verify_password("pw", ada.password_hash)
    assert ada.display_name == "Ada Lovelace"
    assert people["alan"].display_name == "alan"
    assert (ada.is_active, ada.is_admin) == (True, False)


def test_create_user_with_a_ready_hash(db: Database) -> None:
    with db.session() as s:
        user = UserRepository(s).create_user("x", "x@example.com",
                                             password_hash=hash_password("secret"))
    assert verify_password("secret", user.password_hash)


def test_create_user_wants_exactly_one_password_form(db: Database) -> None:
    with db.session() as s, pytest.raises(QueryError):
        UserRepository(s).create_user("x", "x@example.com")
    with db.session() as s, pytest.raises(QueryError):
        UserRepository(s).create_user("x", "x@example.com", "pw", password_hash=b"h")
    with db.session() as s, pytest.raises(QueryError, match="email"):
        UserRepository(s).create_user("x", "not-an-email", "pw")


def test_duplicate_username_or_email_is_a_conflict(db: Database) -> None:
    add_people(db)
    with pytest.raises(Conflict), db.session() as s:
        UserRepository(s).create_user("ada", "other@example.com", "pw")
    with pytest.raises(Conflict), db.session() as s:
        UserRepository(s).create_user("other", "grace@example.com", "pw")


def test_get_by_username_and_email(db: Database) -> None:
    add_people(db)
    with db.read_session() as s:
        users = UserRepository(s)
        grace = users.get_by_username("grace")
        assert grace is not None
        assert grace.full_name == "Grace Hopper"
        assert users.get_by_username("nobody") is None
        found = users.get_by_email("Ada@EXAMPLE.com")
        assert found is not None
        assert found.username == "ada"
        assert users.get_by_email("nobody@example.com") is None


def test_search_users_ignores_case_and_takes_wildcards_literally(db: Database) -> None:
    add_people(db)
    with db.read_session() as s:
        users = UserRepository(s)
        assert [u.username for u in users.search_users("A")] == [
            "ada", "alan", "edsger_w", "grace"]
        assert [u.username for u in users.search_users("hopper")] == ["grace"]
        assert [u.username for u in users.search_users("EXAMPLE.com", limit=2)] == [
            "ada", "alan"]
        assert [u.username for u in users.search_users("_")] == ["edsger_w"]
        assert [u.username for u in users.search_users("100%")] == ["edsger_w"]
        assert [u.username for u in users.search_users("al", active_only=True)] == []
        assert users.search_users("zzz") == []


def test_get_active_users(db: Database, count_selects: Callable[..., object]) -> None:
    people = add_people(db)
    with db.session() as s:
        projects = ProjectRepository(s)
        projects.create_project("One", "one", people["ada"])
        projects.create_project("Two", "two", people["ada"])
        projects.create_project("Three", "three", people["grace"])
    with db.read_session() as s:
        users = UserRepository(s)
        assert [u.username for u in users.get_active_users()] == ["ada", "edsger_w", "grace"]
        assert [u.username for u in users.get_active_users(limit=1, offset=1)] == ["edsger_w"]
        counter = count_selects()
        active = users.get_active_users(with_projects=True)
        slugs = {u.username: [p.slug for p in u.projects] for u in active}
    assert slugs == {"ada": ["one", "two"], "edsger_w": [], "grace": ["three"]}
    assert counter.selects == 2  # users, then all their projects at once


def test_authenticate(db: Database) -> None:
    add_people(db)
    with db.read_session() as s:
        users = UserRepository(s)
        by_name = users.authenticate("ada", "pw")
        assert by_name is not None
        assert by_name.username == "ada"
        by_email = users.authenticate("grace@example.com", "pw")
        assert by_email is not None
        assert by_email.username == "grace"
        assert users.authenticate("ada", "wrong") is None
        assert users.authenticate("alan", "pw") is None  # inactive
        assert users.authenticate("nobody", "pw") is None


def test_set_password(db: Database) -> None:
    people = add_people(db)
    with db.session() as s:
        users = UserRepository(s)
        users.set_password(users.get_or_raise(people["ada"].id), "new")
    with db.read_session() as s:
        users = UserRepository(s)
        assert users.authenticate("ada", "new") is not None
        assert users.authenticate("ada", "pw") is None


# -- projects -----------------------------------------------------------------------


def test_projects(db: Database, count_selects: Callable[..., object]) -> None:
    people = add_people(db)
    with db.session() as s:
        projects = ProjectRepository(s)
        projects.create_project("Beta", "beta", people["ada"], description="b",
                                repository_url="https://example.com/b.git")
        projects.create_project("Alpha", "alpha", people["grace"].id)
    with pytest.raises(Conflict), db.session() as s:
        ProjectRepository(s).create_project("Again", "beta", people["ada"])
    with db.read_session() as s:
        projects = ProjectRepository(s)
        counter = count_selects()
        beta = projects.get_by_slug("beta")
        everything = projects.list_with_owners()
        owners = [(p.slug, p.owner.username) for p in everything]
        assert counter.selects == 2  # the owners came with their projects
        assert beta is not None
        assert beta.owner.username == "ada"
        assert projects.get_by_slug("nope") is None
        assert [p.slug for p in projects.list_with_owners(owner=people["ada"])] == ["beta"]
    assert owners == [("alpha", "grace"), ("beta", "ada")]


# -- session tokens -----------------------------------------------------------------


def test_issue_returns_the_secret_once_and_stores_only_its_hash(db: Database) -> None:
    people = add_people(db)
    with db.session() as s:
        issued = SessionTokenRepository(s).issue(people["ada"], ttl_seconds=60)
    assert len(issued.secret) >= 40
    assert issued.secret not in repr(issued)
    assert issued.token.token_hash != issued.secret
    assert issued.secret not in issued.token.token_hash
    assert "token_hash" not in issued.token.to_dict()
    now = utcnow()
    assert now < issued.token.expires_at <= now + dt.timedelta(seconds=61)


def test_verify(db: Database) -> None:
    people = add_people(db)
    with db.session() as s:
        tokens = SessionTokenRepository(s)
        live = tokens.issue(people["ada"])
        expired = tokens.issue(people["ada"], ttl_seconds=-1)
        inactive = tokens.issue(people["alan"])
    with db.read_session() as s:
        tokens = SessionTokenRepository(s)
        token = tokens.verify(live.secret)
        assert token is not None
        assert token.user.username == "ada"  # loaded with the token
        assert tokens.verify(expired.secret) is None
        assert tokens.verify(inactive.secret) is None
        assert tokens.verify("not-a-token") is None


def test_revoke(db: Database) -> None:
    people = add_people(db)
    with db.session() as s:
        tokens = SessionTokenRepository(s)
        first, second, third = (tokens.issue(people["ada"]) for _ in range(3))
    with db.session() as s:
        tokens = SessionTokenRepository(s)
        assert tokens.revoke(first.secret) is True
        assert tokens.revoke(first.secret) is False
        assert tokens.revoke("unknown") is False
        row = tokens.get_or_raise(second.token.id)
        assert tokens.revoke(row) is True
    with db.read_session() as s:
        tokens = SessionTokenRepository(s)
        assert tokens.verify(first.secret) is None
        assert tokens.verify(second.secret) is None
        assert tokens.verify(third.secret) is not None


def test_revoke_all(db: Database) -> None:
    people = add_people(db)
    with db.session() as s:
        tokens = SessionTokenRepository(s)
        mine = [tokens.issue(people["ada"]) for _ in range(3)]
        theirs = tokens.issue(people["grace"])
        tokens.revoke(mine[0].secret)
    with db.session() as s:
        assert SessionTokenRepository(s).revoke_all(people["ada"]) == 2
    with db.read_session() as s:
        tokens = SessionTokenRepository(s)
        assert all(tokens.verify(t.secret) is None for t in mine)
        assert tokens.verify(theirs.secret) is not None


# -- audit log ----------------------------------------------------------------------


def test_audit_record_and_history(db: Database, count_selects: Callable[..., object]) -> None:
    people = add_people(db)
    with db.session() as s:
        audit = AuditRepository(s)
        first = audit.record("project.create", "project", 42, actor=people["ada"],
                             details={"slug": "x", "tags": ["a"]}, ip="2001:db8::1")
        audit.record("project.rename", "project", "42", actor=people["grace"].id)
        audit.record("project.create", "project", 43)
        audit.record("system.start", "system")
    assert first.entity_id == "42"
    assert first.created_at.tzinfo is not None
    with db.read_session() as s:
        counter = count_selects()
        history = AuditRepository(s).for_entity("project", 42)
        actors = [(entry.action, entry.actor.username if entry.actor else None)
                  for entry in history]
        assert counter.selects == 1
        assert history[-1].details == {"slug": "x", "tags": ["a"]}
        assert history[-1].ip == "2001:db8::1"
    assert actors == [("project.rename", "grace"), ("project.create", "ada")]
