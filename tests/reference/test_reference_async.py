"""Relationships and bytes of the reference schema through the async API, on every
backend, as docs/async.md documents them: a lazy load raises ``MissingGreenlet``;
``awaitable_attrs`` and eager loader options load the relationship."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from sqlalchemy import select
from sqlalchemy.exc import MissingGreenlet, StatementError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import DetachedInstanceError

from storelayer import AsyncDatabase, connect_async
from storelayer.database import Database
from storelayer.reference import Project, User
from storelayer.reference.passwords import hash_password, verify_password

SLUGS = ["alpha", "beta"]


async def add_user_with_projects(db: AsyncDatabase) -> int:
    async with db.session() as s:
        user = await s.repository(User).create(
            username="ada", email="ada@example.com", password_hash=hash_password("pw")
        )
        rows = [{"name": slug, "slug": slug, "owner_id": user.id} for slug in SLUGS]
        await s.repository(Project).bulk_create(rows)
        return user.id


async def relationship_paths(db: AsyncDatabase) -> None:
    key = await add_user_with_projects(db)
    async with db.read_session() as s:
        user = await s.repository(User).get_or_raise(key)
        assert verify_password("pw", user.password_hash), "the hash came back changed"
        with warnings.catch_warnings():  # aiosqlite's cursor(), created and never awaited
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(StatementError) as lazy_load:
                _ = user.projects  # a lazy load: blocking IO the event loop cannot do
            assert isinstance(lazy_load.value.orig, MissingGreenlet)
            del lazy_load
            gc.collect()
        assert [p.slug for p in await user.awaitable_attrs.projects] == SLUGS
    async with db.read_session() as s:
        eager = (await s.scalars(select(User).options(selectinload(User.projects)))).one()
    async with db.read_session() as s:
        lazy = await s.repository(User).get_or_raise(key)
    assert [p.slug for p in eager.projects] == SLUGS, "loaded with the user, usable after"
    with pytest.raises(DetachedInstanceError):
        _ = lazy.projects


def test_async_relationship_loading(db: Database) -> None:
    async def scenario() -> None:
        async with connect_async(db.url, backend=db.backend.name) as async_db:
            await relationship_paths(async_db)

    asyncio.run(scenario())
