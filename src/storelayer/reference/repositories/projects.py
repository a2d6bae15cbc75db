"""Projects: creation, lookup by slug, listing with their owners."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from storelayer.reference.models import Project, User
from storelayer.reference.repositories._ids import id_of
from storelayer.repository import Repository


class ProjectRepository(Repository[Project]):
    """The projects commands run in."""

    model = Project

    def create_project(
        self,
        name: str,
        slug: str,
        owner: User | int,
        *,
        description: str | None = None,
        repository_url: str | None = None,
    ) -> Project:
        """A new project owned by ``owner``; ``Conflict`` when the slug is taken."""
        return self.create(
            name=name, slug=slug, owner_id=id_of(owner), description=description,
            repository_url=repository_url,
        )

    def get_by_slug(self, slug: str) -> Project | None:
        """The project with ``slug``, its owner loaded in the same query."""
        stmt = select(Project).where(Project.slug == slug).options(joinedload(Project.owner))
        return self.session.scalars(stmt).one_or_none()

    def list_with_owners(
        self, *, owner: User | int | None = None, limit: int = 100
    ) -> list[Project]:
        """Projects by name (of ``owner``, if given), each with its owner loaded in the
        same query instead of one query per project."""
        stmt = select(Project).options(joinedload(Project.owner))
        if owner is not None:
            stmt = stmt.where(Project.owner_id == id_of(owner))
        stmt = stmt.order_by(Project.name, Project.id).limit(limit)
        return list(self.session.scalars(stmt))
