"""taskboard's own tests, once per backend under test (--storelayer-backends), each in
a transaction that is rolled back: every test starts from the migrated, empty schema."""

import asyncio

import pytest
from sqlalchemy import func, select

from storelayer import Conflict, Database
from storelayer.session import Session
from taskboard.models import Comment, Project, Task
from taskboard.service import finish, open_counts, project_titles, start_project


def test_every_test_starts_empty(rollback_database: Database) -> None:
    assert open_counts(rollback_database) == {}


def test_start_and_finish_commit_inside_the_test(rollback_database: Database) -> None:
    project = start_project(rollback_database, "alpha", ["design", "build"])
    with rollback_database.read_session() as s:
        first = s.scalars(select(Task).where(Task.project_id == project).order_by(Task.id)).first()
    assert first is not None
    finish(rollback_database, first.id, "shipped")
    assert open_counts(rollback_database) == {"alpha": 1}
    with rollback_database.read_session() as s:
        assert [c.body for c in s.scalars(select(Comment))] == ["shipped"]


def test_a_failed_unit_of_work_leaves_the_test_usable(rollback_database: Database) -> None:
    start_project(rollback_database, "alpha", [])
    with pytest.raises(Conflict):
        start_project(rollback_database, "alpha", ["again"])
    assert open_counts(rollback_database) == {"alpha": 0}


def test_a_session_that_commits(rollback_session: Session) -> None:
    rollback_session.add(Project(name="beta", tasks=[Task(title="one")]))
    rollback_session.commit()
    assert rollback_session.scalar(select(func.count()).select_from(Task)) == 1


def test_async_code(async_rollback_database) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> list[str]:
        async with async_rollback_database() as db:
            async with db.session() as s:
                s.add(Project(name="gamma", tasks=[Task(title="t1"), Task(title="t2")]))
            return await project_titles(db, "gamma")

    assert asyncio.run(scenario()) == ["t1", "t2"]
