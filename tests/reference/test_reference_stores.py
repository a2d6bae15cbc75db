"""The cache and per-project configuration, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from storelayer.database import Database
from storelayer.errors import Conflict
from storelayer.reference import CacheEntry, Configuration
from storelayer.reference.repositories import (
    CacheRepository,
    ConfigurationRepository,
    ProjectRepository,
    UserRepository,
)
from storelayer.reference.types import utcnow

# -- cache --------------------------------------------------------------------------


def test_set_and_get(db: Database) -> None:
    with db.session() as s:
        cache = CacheRepository(s)
        cache.set_cache("user:1", {"name": "Ada", "roles": ["admin"]})
        cache.set_cache("answer", 42, ttl_seconds=60)
        cache.set_cache("nothing", None)
    with db.read_session() as s:
        cache = CacheRepository(s)
        assert cache.get_cache("user:1") == {"name": "Ada", "roles": ["admin"]}
        assert cache.get_cache("answer") == 42
        assert cache.get_cache("missing") is None
        assert cache.get_cache("missing", "fallback") == "fallback"
        assert cache.get_cache("nothing", "fallback") is None
        assert cache.has_cache("nothing") is True
        assert cache.has_cache("missing") is False


def test_set_cache_overwrites_in_place(db: Database) -> None:
    with db.session() as s:
        CacheRepository(s).set_cache("k", "first", ttl_seconds=-10)
    with db.session() as s:
        cache = CacheRepository(s)
        before = cache.get_by(key="k")
        assert before is not None
        created = before.created_at
        cache.set_cache("k", ["second"], ttl_seconds=None)
    with db.read_session() as s:
        cache = CacheRepository(s)
        assert cache.count() == 1
        entry = cache.get_by(key="k")
        assert entry is not None
        assert (entry.value, entry.expires_at) == (["second"], None)
        assert entry.created_at == created
        assert entry.updated_at > created
        assert cache.get_cache("k") == ["second"]


def test_ttl(db: Database) -> None:
    with db.session() as s:
        cache = CacheRepository(s)
        cache.set_cache("fresh", 1, ttl_seconds=3600)
        cache.set_cache("stale", 2, ttl_seconds=-1)
    with db.read_session() as s:
        cache = CacheRepository(s)
        assert cache.get_cache("fresh") == 1
        assert cache.get_cache("stale") is None  # expired reads as missing
        fresh = cache.get_by(key="fresh")
        assert fresh is not None
        assert fresh.expires_at is not None
        remaining = fresh.expires_at - utcnow()
        assert dt.timedelta(minutes=59) < remaining <= dt.timedelta(hours=1)


def test_purge_expired(db: Database) -> None:
    with db.session() as s:
        cache = CacheRepository(s)
        cache.set_cache("forever", 0)
        cache.set_cache("fresh", 1, ttl_seconds=3600)
        for i in range(3):
            cache.set_cache(f"stale{i}", i, ttl_seconds=-1 - i)
    with db.session() as s:
        assert CacheRepository(s).purge_expired() == 3
    with db.session() as s:
        cache = CacheRepository(s)
        assert sorted(e.key for e in cache.list()) == ["forever", "fresh"]
        later = utcnow() + dt.timedelta(hours=2)
        assert cache.purge_expired(now=later) == 1
        assert cache.delete_cache("forever") is True
        assert cache.delete_cache("forever") is False
        assert cache.count() == 0


def test_entries_are_rows_of_the_model(db: Database) -> None:
    with db.session() as s:
        CacheRepository(s).set_cache("k", {"a": 1})
    with db.read_session() as s:
        entry = s.get(CacheEntry, CacheRepository(s).get_by(key="k").id)  # type: ignore[union-attr]
    assert entry is not None
    assert repr(entry) == f"<CacheEntry id={entry.id} key='k'>"


# -- configuration ------------------------------------------------------------------


@pytest.fixture
def projects(db: Database) -> tuple[int, int]:
    with db.session() as s:
        owner = UserRepository(s).create_user("ada", "ada@example.com", "pw")
        repo = ProjectRepository(s)
        return repo.create_project("A", "a", owner).id, repo.create_project("B", "b", owner).id


def test_set_and_get_values(db: Database, projects: tuple[int, int]) -> None:
    a, b = projects
    with db.session() as s:
        settings = ConfigurationRepository(s)
        settings.set_value(a, "build.parallel", 4)
        settings.set_value(a, "notify", {"on": ["failure"]})
        settings.set_value(b, "build.parallel", 8)
    with db.read_session() as s:
        settings = ConfigurationRepository(s)
        assert settings.get_value(a, "build.parallel") == 4
        assert settings.get_value(b, "build.parallel") == 8
        assert settings.get_value(a, "notify") == {"on": ["failure"]}
        assert settings.get_value(b, "notify") is None
        assert settings.get_value(b, "notify", {"on": []}) == {"on": []}
        assert settings.values(a) == {"build.parallel": 4, "notify": {"on": ["failure"]}}


def test_set_value_updates_the_one_row(db: Database, projects: tuple[int, int]) -> None:
    a, _ = projects
    with db.session() as s:
        ConfigurationRepository(s).set_value(a, "k", 1)
    with db.session() as s:
        settings = ConfigurationRepository(s)
        settings.set_value(a, "k", [1, 2])
        assert settings.count(project_id=a, key="k") == 1
        assert settings.get_value(a, "k") == [1, 2]
        assert settings.delete_value(a, "k") is True
        assert settings.delete_value(a, "k") is False


def test_one_value_per_project_and_key(db: Database, projects: tuple[int, int]) -> None:
    a, _ = projects
    with pytest.raises(Conflict), db.session() as s:
        s.add_all([Configuration(project_id=a, key="k", value=1),
                   Configuration(project_id=a, key="k", value=2)])


def test_settings_go_with_their_project(db: Database, projects: tuple[int, int]) -> None:
    a, b = projects
    with db.session() as s:
        ConfigurationRepository(s).set_value(a, "k", 1)
        ConfigurationRepository(s).set_value(b, "k", 2)
    with db.session() as s:
        ProjectRepository(s).delete_where(id=a)
    with db.read_session() as s:
        assert ConfigurationRepository(s).values(a) == {}
        assert ConfigurationRepository(s).values(b) == {"k": 2}
