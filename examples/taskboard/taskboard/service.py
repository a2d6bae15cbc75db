"""What the application does with its models: each function is one unit of work that
commits, the way application code usually is."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from storelayer import Database
from storelayer.aio import AsyncDatabase
from taskboard.models import Comment, Project, Status, Task


def start_project(db: Database, name: str, titles: list[str]) -> int:
    """Create a project with its first tasks; returns its id."""
    with db.session() as s:
        project = Project(name=name, tasks=[Task(title=t) for t in titles])
        s.add(project)
        s.flush()
        return project.id


def finish(db: Database, task_id: int, note: str) -> None:
    """Mark a task done, with a closing comment."""
    with db.session() as s:
        task = s.get_one(Task, task_id)
        task.status = Status.DONE
        task.comments.append(Comment(body=note))


def open_counts(db: Database) -> dict[str, int]:
    """Open tasks per project name."""
    with db.read_session() as s:
        rows = s.execute(
            select(Project.name, func.count(Task.id))
            .join(Task, (Task.project_id == Project.id) & (Task.status == Status.OPEN),
                  isouter=True)
            .group_by(Project.name)
        )
        return {str(name): int(count) for name, count in rows}


async def project_titles(db: AsyncDatabase, name: str) -> list[str]:
    """The titles of a project's tasks (async)."""
    async with db.read_session() as s:
        project = await s.scalar(
            select(Project).where(Project.name == name).options(selectinload(Project.tasks))
        )
        return [] if project is None else [task.title for task in project.tasks]
