"""The models and repositories the async "Database API" document (seed 004) shows in part:
its class bodies as written, completed with what it leaves out (marked ``# ADDED:``):
column defaults, foreign keys, the ``FixAttempt`` its relationships name, and the bodies
of the specialized repositories' methods, written on ``BaseRepository``."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import Enum

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from storelayer.compat.aio import BaseModel, BaseRepository
from storelayer.reference import utcnow

# -- Model Enums (as written) ------------------------------------------------------------


class PRState(str, Enum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class CheckRunStatus(str, Enum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class CheckRunConclusion(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    ACTION_REQUIRED = "action_required"


# -- Base Model ---------------------------------------------------------------------------


class CustomModel(BaseModel):
    """Custom model example."""

    __tablename__ = "custom_table"

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    # ADDED: CustomRepository.get_active_entities filters on it
    is_active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self) -> str:
        return f"<CustomModel(id={self.id}, name='{self.name}')>"


# -- Core Models --------------------------------------------------------------------------


class Repository(BaseModel):
    __tablename__ = "repositories"

    name: Mapped[str]
    full_name: Mapped[str]
    url: Mapped[str] = mapped_column(default="")  # ADDED: defaults for what examples omit
    default_branch: Mapped[str] = mapped_column(default="main")
    is_private: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)

    pull_requests: Mapped[list[PullRequest]] = relationship(back_populates="repository")
    check_runs: Mapped[list[CheckRun]] = relationship(back_populates="repository")


class PullRequest(BaseModel):
    __tablename__ = "pull_requests"
    __table_args__ = (
        # ADDED: one PR per number in a repository (the Error Handling example's duplicate)
        UniqueConstraint("repository_id", "pr_number"),
        # ADDED: the foreign key the comment names, known to the models (joins and
        # relationships find it) but not created in the database: the Quick Start and
        # the document's own test make pull requests of random repository ids
        ForeignKeyConstraint(["repository_id"], ["repositories.id"]).ddl_if(
            callable_=lambda *_args, **_kwargs: False
        ),
    )

    repository_id: Mapped[uuid.UUID] = mapped_column(index=True)
    pr_number: Mapped[int]
    title: Mapped[str] = mapped_column(default="")  # ADDED: defaults for what examples omit
    body: Mapped[str | None]
    author: Mapped[str] = mapped_column(default="")

    state: Mapped[PRState] = mapped_column(default=PRState.OPEN, index=True)
    is_draft: Mapped[bool] = mapped_column(default=False)

    github_id: Mapped[int] = mapped_column(default=0)
    head_sha: Mapped[str] = mapped_column(default="")
    base_branch: Mapped[str] = mapped_column(default="main")
    head_branch: Mapped[str] = mapped_column(default="")

    repository: Mapped[Repository] = relationship(back_populates="pull_requests")
    check_runs: Mapped[list[CheckRun]] = relationship(back_populates="pull_request")
    fix_attempts: Mapped[list[FixAttempt]] = relationship(back_populates="pull_request")


class CheckRun(BaseModel):
    __tablename__ = "check_runs"

    # ADDED: the foreign keys the comments name; a check may be made without a repository
    repository_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("repositories.id"))
    pull_request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pull_requests.id"))

    github_id: Mapped[int] = mapped_column(default=0)  # ADDED: defaults
    name: Mapped[str]
    head_sha: Mapped[str] = mapped_column(default="")

    status: Mapped[CheckRunStatus] = mapped_column(default=CheckRunStatus.QUEUED)
    conclusion: Mapped[CheckRunConclusion | None]

    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]

    output_title: Mapped[str | None]
    output_summary: Mapped[str | None]
    output_text: Mapped[str | None] = mapped_column(String(4000))  # ADDED: room for logs

    repository: Mapped[Repository | None] = relationship(back_populates="check_runs")
    pull_request: Mapped[PullRequest] = relationship(back_populates="check_runs")


class FixAttempt(BaseModel):  # ADDED: named by PullRequest.fix_attempts, not shown
    __tablename__ = "fix_attempts"

    pull_request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pull_requests.id"))
    pull_request: Mapped[PullRequest] = relationship(back_populates="fix_attempts")


# -- Repositories: as written where shown, the rest ADDED on BaseRepository ---------------


class CustomRepository(BaseRepository[CustomModel]):
    """Custom repository with additional methods."""

    def __init__(self, session: AsyncSession):
        super().__init__(session, CustomModel)

    async def get_by_name(self, name: str) -> CustomModel | None:
        """Get entity by name."""
        stmt = select(CustomModel).where(CustomModel.name == name)
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()

    async def get_active_entities(self) -> list[CustomModel]:
        """Get all active entities."""
        stmt = select(CustomModel).where(CustomModel.is_active == True)  # noqa: E712
        result = await self.session.execute(stmt)
        return list(result.scalars().all())


def since(**delta: float) -> dt.datetime:
    return utcnow() - dt.timedelta(**delta)


class PullRequestRepository(BaseRepository[PullRequest]):  # ADDED: the methods' bodies
    def __init__(self, session: AsyncSession):
        super().__init__(session, PullRequest)

    async def get_by_number(self, repository_id: uuid.UUID, pr_number: int) -> PullRequest | None:
        return await self.get_by(repository_id=repository_id, pr_number=pr_number)

    async def get_by_status(self, status: str) -> list[PullRequest]:
        return await self.list(state=status, order_by="-created_at")

    async def get_prs_with_failed_checks(self, repository_id: uuid.UUID) -> list[PullRequest]:
        return await self.list(
            repository_id=repository_id,
            check_runs__conclusion=CheckRunConclusion.FAILURE,
            options=[selectinload(PullRequest.check_runs)],
        )

    async def get_recent(self, limit: int = 10, days: float = 7) -> list[PullRequest]:
        return await self.list(created_at__gte=since(days=days), order_by="-created_at",
                               limit=limit)

    async def search(self, query: str, author: str | None = None) -> list[PullRequest]:
        filters = {"author": author} if author is not None else {}
        return await self.list(title__ilike=f"%{query}%", order_by="-created_at", **filters)

    async def get_with_repository(self, pr_id: uuid.UUID) -> PullRequest | None:
        return await self.get_by_id(pr_id, options=[selectinload(PullRequest.repository)])


class RepositoryRepository(BaseRepository[Repository]):  # ADDED: the methods' bodies
    def __init__(self, session: AsyncSession):
        super().__init__(session, Repository)

    async def get_by_full_name(self, full_name: str) -> Repository | None:
        return await self.get_by(full_name=full_name)

    async def get_active_repositories(self) -> list[Repository]:
        return await self.list(is_active=True, order_by="full_name")

    async def get_with_recent_activity(self, hours: float = 24) -> list[Repository]:
        return await self.list(pull_requests__created_at__gte=since(hours=hours),
                               order_by="full_name")


class CheckRunRepository(BaseRepository[CheckRun]):  # ADDED: the methods' bodies
    def __init__(self, session: AsyncSession):
        super().__init__(session, CheckRun)

    async def get_failed_checks(self, pull_request_id: uuid.UUID) -> list[CheckRun]:
        return await self.list(pull_request_id=pull_request_id,
                               conclusion=CheckRunConclusion.FAILURE, order_by="name")

    async def get_by_commit_sha(self, repository_id: uuid.UUID, sha: str) -> list[CheckRun]:
        return await self.list(repository_id=repository_id, head_sha=sha, order_by="name")

    async def get_recent(self, repository_id: uuid.UUID, limit: int = 50) -> list[CheckRun]:
        return await self.list(repository_id=repository_id, order_by="-created_at",
                               limit=limit)
