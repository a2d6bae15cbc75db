"""Every Python example of the async "Database API" document (shared/seeds/004_...txt),
run through ``storelayer.compat.aio`` on each backend's async driver.

Each test holds one example in its ``# -- example --`` block, as the document writes it
but for ``src.database.*``/``src.config.*``/``src.repositories.base`` read as
``storelayer.compat.aio`` and the models and repositories it shows in part read from
``seed_004_models`` (completed there, each addition marked). A line marked ``# CHANGED:``
says what the document left out or what could not run as written, and why; the list is in
docs/guide/from-the-guides.md. Top-level ``await`` runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from seed_004_models import (
    CheckRun,
    CheckRunConclusion,
    CheckRunRepository,
    CheckRunStatus,
    CustomRepository,
    PRState,
    PullRequest,
    PullRequestRepository,
    Repository,
    RepositoryRepository,
)
from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from storelayer import Backend, NotFound
from storelayer.compat.aio import (
    DatabaseConfig,
    DatabaseConnectionManager,
    DatabaseMonitor,
    get_connection_manager,
)
from storelayer.migrations import MigrationManager

logger = logging.getLogger("seed_004")  # CHANGED: the Error Handling example's, left out


@pytest.fixture
async def manager(db_url: str) -> AsyncIterator[DatabaseConnectionManager]:
    """An initialized manager on the test database (the examples' ``manager``)."""
    opened = DatabaseConnectionManager(DatabaseConfig(url=db_url))
    await opened.initialize()
    yield opened
    await opened.close()


async def stored_prs(manager: DatabaseConnectionManager) -> list[tuple[int, str, str]]:
    async with manager.get_session() as session:
        rows = await PullRequestRepository(session).list(order_by="pr_number")
    return [(pr.pr_number, pr.title, pr.state.value) for pr in rows]


async def a_repository(manager: DatabaseConnectionManager, **values: Any) -> Repository:
    async with manager.get_session() as session:
        values = {"name": "repo", "full_name": "owner/repo", **values}
        return await RepositoryRepository(session).create(**values)


# -- Quick Start --------------------------------------------------------------------------


def test_quick_start_basic_usage(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def create_tables() -> None:  # CHANGED: the tables exist before the example
        setup = DatabaseConnectionManager(DatabaseConfig(url=db_url))
        await setup.initialize()
        await setup.close()

    asyncio.run(create_tables())

    def load_config() -> Any:  # CHANGED: the application's configuration, left out
        return SimpleNamespace(database=DatabaseConfig(url=db_url))

    # -- example --
    async def main():
        # Load configuration
        config = load_config()

        # Get database connection
        manager = get_connection_manager(config.database)

        # Use repository
        async with manager.get_session() as session:
            pr_repo = PullRequestRepository(session)

            # Create a pull request
            pr = await pr_repo.create(
                repository_id=uuid.uuid4(),
                pr_number=123,
                title="Feature: Add new API endpoint",
                author="developer"
            )

            print(f"Created PR: {pr.title}")

            # Query pull requests
            open_prs = await pr_repo.get_by_status("open")
            print(f"Open PRs: {len(open_prs)}")

        await manager.close()  # CHANGED: closed in the loop that opened it

    asyncio.run(main())
    # --
    assert capsys.readouterr().out == "Created PR: Feature: Add new API endpoint\nOpen PRs: 1\n"


async def test_quick_start_connection_setup(db_url: str) -> None:
    # -- example --
    # Create connection manager
    db_config = DatabaseConfig(
        url=db_url,  # CHANGED: the test database
        pool_size=20,
        max_overflow=30,
        pool_timeout=30
    )

    manager = DatabaseConnectionManager(db_config)

    # Initialize database
    await manager.initialize()

    # Use session
    async with manager.get_session() as session:
        # Database operations
        pass

    # Cleanup
    await manager.close()
    # --
    assert manager.config.pool_size == 20
    assert session.in_transaction() is False


# -- Database Models ----------------------------------------------------------------------


async def test_models_base_model(manager: DatabaseConnectionManager) -> None:
    async with manager.get_session() as session:
        entity = await CustomRepository(session).create(name="x", description="y")
    assert isinstance(entity.id, uuid.UUID)
    assert entity.created_at.tzinfo is not None and entity.updated_at is not None
    assert repr(entity) == f"<CustomModel(id={entity.id}, name='x')>"


async def test_models_core_models_and_enums(manager: DatabaseConnectionManager) -> None:
    repo = await a_repository(manager)
    async with manager.get_session() as session:
        pr = await PullRequestRepository(session).create(repository_id=repo.id, pr_number=1)
        check = await CheckRunRepository(session).create(
            repository_id=repo.id, pull_request_id=pr.id, name="CI",
            status=CheckRunStatus.COMPLETED, conclusion=CheckRunConclusion.TIMED_OUT,
        )
    async with manager.get_session() as session:
        loaded = await CheckRunRepository(session).get_by_id(
            check.id,
            options=[selectinload(CheckRun.pull_request), selectinload(CheckRun.repository)],
        )
    assert loaded.conclusion is CheckRunConclusion.TIMED_OUT
    assert (loaded.pull_request.state, loaded.repository.full_name) == (PRState.OPEN, "owner/repo")


async def test_models_utilities(
    manager: DatabaseConnectionManager, capsys: pytest.CaptureFixture[str]
) -> None:
    async with manager.get_session() as session:
        pr_repo = PullRequestRepository(session)  # CHANGED: the PR and its repository,
        pr_id = (await pr_repo.create(repository_id=uuid.uuid4(), pr_number=1,  # left out
                                      title="Feature: x")).id
        # -- example --
        # Convert model to dictionary
        pr = await pr_repo.get_by_id(pr_id)
        pr_data = pr.to_dict()
        print(pr_data)
        # Output: {'id': UUID('...'), 'title': 'Feature: ...', 'created_at': datetime(...)}

        # String representation
        print(repr(pr))
        # Output: <PullRequest(id=123e4567-e89b-12d3-a456-426614174000)>

        # Access timestamps
        print(f"Created: {pr.created_at}")
        print(f"Updated: {pr.updated_at}")
        # --
    out = capsys.readouterr().out.splitlines()
    assert f"'id': UUID('{pr_id}')" in out[0] and "'title': 'Feature: x'" in out[0]
    assert out[1].startswith(f"<PullRequest id=UUID('{pr_id}')")
    assert out[2].startswith("Created: 20") and out[3].startswith("Updated: 20")


# -- Repository Pattern -------------------------------------------------------------------


async def test_repository_base_repository(manager: DatabaseConnectionManager) -> None:
    async with manager.get_session() as session:
        repo = CustomRepository(session)
        await repo.create(name="on")
        await repo.create(name="off", is_active=False)
        assert (await repo.get_by_name("on")).is_active is True
        assert [e.name for e in await repo.get_active_entities()] == ["on"]


async def test_repository_crud_operations(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()  # CHANGED: the session, repository and ids, left out
    async with manager.get_session() as session:
        pr_repo = PullRequestRepository(session)
        # -- example --
        # Create
        new_pr = await pr_repo.create(
            repository_id=repo_id,
            pr_number=123,
            title="New feature",
            author="developer"
        )
        pr_id = new_pr.id  # CHANGED: the id read below, left out

        # Read
        pr = await pr_repo.get_by_id(pr_id)
        pr = await pr_repo.get_by_id_or_raise(pr_id)  # Raises exception if not found

        # Update
        updated_pr = await pr_repo.update(pr, title="Updated title", state=PRState.CLOSED)
        # --
        assert (await stored_prs_in(session)) == [(123, "Updated title", "closed")]
        # -- example --
        # Delete
        await pr_repo.delete(pr)

        # List with pagination
        prs = await pr_repo.list(limit=50, offset=0)

        # Count
        total_prs = await pr_repo.count()
        # --
        assert updated_pr is pr and prs == [] and total_prs == 0
        with pytest.raises(NotFound):
            await pr_repo.get_by_id_or_raise(pr_id)


async def stored_prs_in(session: Any) -> list[tuple[int, str, str]]:
    rows = await PullRequestRepository(session).list(order_by="pr_number")
    return [(pr.pr_number, pr.title, pr.state.value) for pr in rows]


async def test_repository_pull_request_repository(manager: DatabaseConnectionManager) -> None:
    repo = await a_repository(manager)
    repository_id = repo.id  # CHANGED: the repository and its PRs, left out
    async with manager.get_session() as session:
        prs = PullRequestRepository(session)
        await prs.create(repository_id=repository_id, pr_number=123, title="bug fix: a",
                         author="developer")
        failing = await prs.create(repository_id=repository_id, pr_number=124,
                                   title="Feature", state=PRState.MERGED)
        await CheckRunRepository(session).create(pull_request_id=failing.id, name="CI",
                                                 conclusion=CheckRunConclusion.FAILURE)
    async with manager.get_session() as session:
        # -- example --
        pr_repo = PullRequestRepository(session)

        # Get by PR number
        pr = await pr_repo.get_by_number(repository_id, pr_number=123)

        # Get by status
        open_prs = await pr_repo.get_by_status("open")
        merged_prs = await pr_repo.get_by_status("merged")

        # Get with failed checks
        prs_with_failures = await pr_repo.get_prs_with_failed_checks(repository_id)

        # Get recent PRs
        recent_prs = await pr_repo.get_recent(limit=10, days=7)

        # Search by title or author
        search_results = await pr_repo.search(query="bug fix", author="developer")
        # --
    assert pr.title == "bug fix: a"
    assert [p.pr_number for p in open_prs] == [123] and [p.pr_number for p in merged_prs] == [124]
    assert [p.pr_number for p in prs_with_failures] == [124]
    assert [c.name for c in prs_with_failures[0].check_runs] == ["CI"]  # loaded eagerly
    assert len(recent_prs) == 2 and [p.pr_number for p in search_results] == [123]


async def test_repository_repository_repository(manager: DatabaseConnectionManager) -> None:
    active = await a_repository(manager, full_name="owner/repo")
    await a_repository(manager, full_name="owner/old", is_active=False)
    async with manager.get_session() as session:
        await PullRequestRepository(session).create(repository_id=active.id, pr_number=1)
        # -- example --
        repo_repo = RepositoryRepository(session)

        # Get by full name
        repo = await repo_repo.get_by_full_name("owner/repo")

        # Get active repositories
        active_repos = await repo_repo.get_active_repositories()

        # Get repositories with recent activity
        active_repos = await repo_repo.get_with_recent_activity(hours=24)
        # --
    assert repo.id == active.id and [r.full_name for r in active_repos] == ["owner/repo"]


async def test_repository_check_run_repository(manager: DatabaseConnectionManager) -> None:
    repository_id = (await a_repository(manager)).id  # CHANGED: the rows, left out
    async with manager.get_session() as session:
        pr = await PullRequestRepository(session).create(repository_id=repository_id,
                                                         pr_number=1)
        pull_request_id = pr.id
        checks = CheckRunRepository(session)
        for name, conclusion in (("lint", "failure"), ("tests", "success")):
            await checks.create(repository_id=repository_id, pull_request_id=pull_request_id,
                                name=name, head_sha="abc123",
                                conclusion=CheckRunConclusion(conclusion))
    async with manager.get_session() as session:
        # -- example --
        check_repo = CheckRunRepository(session)

        # Get failed check runs
        failed_checks = await check_repo.get_failed_checks(pull_request_id)

        # Get by commit SHA
        checks = await check_repo.get_by_commit_sha(repository_id, sha="abc123")

        # Get recent check runs
        recent_checks = await check_repo.get_recent(repository_id, limit=50)
        # --
    assert [c.name for c in failed_checks] == ["lint"]
    assert [c.name for c in checks] == ["lint", "tests"] and len(recent_checks) == 2


# -- Database Connection ------------------------------------------------------------------


async def test_connection_manager(db_url: str) -> None:
    # -- example --
    # Create connection manager
    db_config = DatabaseConfig(
        url=db_url,                  # CHANGED: the test database
        pool_size=20,                # Connection pool size
        max_overflow=30,             # Additional connections allowed
        pool_timeout=30,             # Connection timeout
        pool_recycle=3600,           # Recycle connections after 1 hour
        pool_pre_ping=True,          # Validate connections before use
        echo_sql=False               # Log SQL queries (development only)
    )

    manager = get_connection_manager(db_config)

    # Initialize database
    await manager.initialize()

    # Get session
    async with manager.get_session() as session:  # noqa: F841
        # Database operations
        pass

    # Health check
    is_healthy = await manager.health_check()
    # --
    assert is_healthy is True
    assert get_connection_manager(db_config) is manager
    await manager.close()


async def test_connection_session_management(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()  # CHANGED: the repository id, left out
    # -- example --
    # Context manager (recommended)
    async with manager.get_session() as session:
        pr_repo = PullRequestRepository(session)
        pr = await pr_repo.create(repository_id=repo_id, pr_number=123)
        # Session automatically committed and closed

    # Manual session management
    session = manager.get_session()
    try:
        pr_repo = PullRequestRepository(session)
        pr = await pr_repo.create(repository_id=repo_id, pr_number=124)  # CHANGED: 124
        await session.commit()
    finally:
        await session.close()
    # --
    # CHANGED: the repositories below are bound to the block's session (the document
    # reuses pr_repo and check_repo from other examples); "..." are these values
    # -- example --
    # Session with transaction
    async with manager.get_session() as session:
        pr_repo, check_repo = PullRequestRepository(session), CheckRunRepository(session)
        async with session.begin():
            # Multiple operations in transaction
            pr = await pr_repo.create(repository_id=repo_id, pr_number=125)
            check = await check_repo.create(pull_request_id=pr.id, name="CI")
            # Automatically committed or rolled back
    # --
    assert [n for n, _, _ in await stored_prs(manager)] == [123, 124, 125]
    assert check.pull_request_id == pr.id


async def test_transactions_automatic(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()  # CHANGED: the repository id, left out
    # -- example --
    # Transaction with session context manager
    async with manager.get_session() as session:
        # Transaction automatically started
        pr_repo = PullRequestRepository(session)
        check_repo = CheckRunRepository(session)

        # Multiple operations
        pr = await pr_repo.create(repository_id=repo_id, pr_number=123)
        check = await check_repo.create(pull_request_id=pr.id, name="CI")

        # Automatically committed on successful exit
        # Automatically rolled back on exception
    # --
    with pytest.raises(RuntimeError):
        async with manager.get_session() as session:
            await PullRequestRepository(session).create(repository_id=repo_id, pr_number=9)
            raise RuntimeError("rolled back")
    # -- example --
    # Explicit transaction control
    async with manager.get_session() as session:
        pr_repo, check_repo = PullRequestRepository(session), CheckRunRepository(session)
        async with session.begin():
            # Explicit transaction
            pr = await pr_repo.create(repository_id=repo_id, pr_number=124)  # CHANGED: "..."
            check = await check_repo.create(pull_request_id=pr.id, name="CI")  # CHANGED
            # Committed on successful exit
    # --
    assert [n for n, _, _ in await stored_prs(manager)] == [123, 124]
    assert check.name == "CI"


async def test_transactions_manual_control(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()
    # -- example --
    async with manager.get_session() as session:
        pr_repo, check_repo = PullRequestRepository(session), CheckRunRepository(session)
        try:
            # Start transaction
            await session.begin()

            # Operations
            pr = await pr_repo.create(repository_id=repo_id, pr_number=1)  # CHANGED: "..."
            check = await check_repo.create(pull_request_id=pr.id, name="CI")  # CHANGED

            # Commit transaction
            await session.commit()
        except Exception:
            # Rollback on error
            await session.rollback()
            raise
    # --
    assert [n for n, _, _ in await stored_prs(manager)] == [1]
    assert check.pull_request_id == pr.id


async def test_transactions_savepoints(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()
    # -- example --
    async with manager.get_session() as session:
        pr_repo, check_repo = PullRequestRepository(session), CheckRunRepository(session)
        async with session.begin():
            # Main transaction
            pr = await pr_repo.create(repository_id=repo_id, pr_number=1)  # CHANGED: "..."

            # Savepoint for risky operation
            savepoint = await session.begin_nested()
            try:
                # CHANGED: "...": a check of no pull request, which the database refuses
                risky_operation = await check_repo.create(  # noqa: F841
                    pull_request_id=uuid.uuid4(), name="risky"
                )
                await savepoint.commit()
            except Exception:
                await savepoint.rollback()
                # Continue with main transaction

            # Main transaction continues
            another_operation = await pr_repo.update(pr, state="closed")
    # --
    assert await stored_prs(manager) == [(1, "", "closed")]
    assert another_operation is pr
    async with manager.get_session() as session:
        assert await CheckRunRepository(session).count() == 0


# -- Query Patterns -----------------------------------------------------------------------


async def test_query_basic(manager: DatabaseConnectionManager) -> None:
    async with manager.get_session() as session:
        prs = PullRequestRepository(session)
        await prs.create(repository_id=uuid.uuid4(), pr_number=123)
        await prs.create(repository_id=uuid.uuid4(), pr_number=124, is_draft=True)
        # -- example --
        # Simple select
        stmt = select(PullRequest).where(PullRequest.state == "open")
        result = await session.execute(stmt)
        open_prs = list(result.scalars().all())

        # Select with multiple conditions
        stmt = select(PullRequest).where(
            and_(
                PullRequest.state == "open",
                PullRequest.is_draft == False  # noqa: E712
            )
        )
        result = await session.execute(stmt)
        open_non_draft_prs = list(result.scalars().all())

        # Select single result
        stmt = select(PullRequest).where(PullRequest.pr_number == 123)
        result = await session.execute(stmt)
        pr = result.scalar_one_or_none()
        # --
    assert len(open_prs) == 2 and [p.pr_number for p in open_non_draft_prs] == [123]
    assert pr.pr_number == 123


async def test_query_joins_and_relationships(
    manager: DatabaseConnectionManager, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = await a_repository(manager, name="api")
    async with manager.get_session() as session:
        pr = await PullRequestRepository(session).create(repository_id=repo.id, pr_number=1,
                                                         title="Add it")
        await CheckRunRepository(session).create(pull_request_id=pr.id, name="CI")
        # -- example --
        # Eager loading with selectinload (separate query)
        stmt = select(PullRequest).options(
            selectinload(PullRequest.check_runs),
            selectinload(PullRequest.repository)
        ).where(PullRequest.state == "open")
        result = await session.execute(stmt)
        prs_with_relations = list(result.scalars().all())

        # Eager loading with joinedload (single query)
        stmt = select(PullRequest).options(
            joinedload(PullRequest.repository)
        ).where(PullRequest.state == "open")
        result = await session.execute(stmt)
        prs_with_repos = list(result.scalars().all())

        # Join queries
        stmt = (
            select(PullRequest, Repository)
            .join(Repository)
            .where(Repository.is_active == True)  # noqa: E712
        )
        result = await session.execute(stmt)
        for pr, repo in result:
            print(f"PR {pr.title} in {repo.name}")
        # --
    assert [c.name for c in prs_with_relations[0].check_runs] == ["CI"]
    assert prs_with_repos[0].repository.name == "api"
    assert capsys.readouterr().out == "PR Add it in api\n"


async def test_query_aggregations(
    manager: DatabaseConnectionManager, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = await a_repository(manager, name="api")
    async with manager.get_session() as session:
        prs = PullRequestRepository(session)
        for number in range(1, 8):
            await prs.create(repository_id=repo.id, pr_number=number,
                             state=PRState.OPEN if number % 2 else PRState.MERGED)
        # -- example --
        # Count queries
        stmt = select(func.count(PullRequest.id)).where(PullRequest.state == "open")
        result = await session.execute(stmt)
        open_pr_count = result.scalar()

        # Group by
        stmt = (
            select(PullRequest.state, func.count(PullRequest.id))
            .group_by(PullRequest.state)
        )
        result = await session.execute(stmt)
        for state, count in result:
            print(f"{state}: {count}")

        # Complex aggregation
        stmt = (
            select(
                Repository.name,
                func.count(PullRequest.id).label("pr_count"),
                func.max(PullRequest.created_at).label("latest_pr")
            )
            .join(Repository)
            .group_by(Repository.name)
            .having(func.count(PullRequest.id) > 5)
        )
        # --
        busy = (await session.execute(stmt)).all()
        # The same group-by through the repository:
        by_state = await prs.aggregate(group_by="state", order_by="state")
    assert open_pr_count == 4
    assert sorted(capsys.readouterr().out.splitlines()) == ["PRState.MERGED: 3",
                                                             "PRState.OPEN: 4"]
    assert [(row.name, row.pr_count) for row in busy] == [("api", 7)]
    assert [(row["state"], row["count"]) for row in by_state] == [
        (PRState.MERGED, 3), (PRState.OPEN, 4)]


async def test_query_pagination(manager: DatabaseConnectionManager) -> None:
    async with manager.get_session() as session:
        prs = PullRequestRepository(session)
        for number in range(1, 26):
            await prs.create(repository_id=uuid.uuid4(), pr_number=number)
        ordered = await prs.list(order_by="created_at,id")
        last_created_at = ordered[4].created_at  # CHANGED: the cursor, left out
        # -- example --
        # Offset-based pagination
        def paginate_query(stmt, page: int, per_page: int):
            offset = (page - 1) * per_page
            return stmt.offset(offset).limit(per_page)

        # Usage
        stmt = select(PullRequest).where(PullRequest.state == "open")
        page_1 = paginate_query(stmt, page=1, per_page=20)
        result = await session.execute(page_1)
        prs = list(result.scalars().all())

        # Cursor-based pagination (more efficient for large datasets)
        def cursor_paginate(stmt, cursor_field, cursor_value, per_page: int):
            return (
                stmt.where(cursor_field > cursor_value)
                .order_by(cursor_field)
                .limit(per_page)
            )

        # Usage
        stmt = select(PullRequest).where(PullRequest.state == "open")
        page = cursor_paginate(stmt, PullRequest.created_at, last_created_at, 20)
        # --
        after = list((await session.execute(page)).scalars())
    assert len(prs) == 20
    assert all(p.created_at > last_created_at for p in after) and len(after) <= 20


# -- Performance Optimization -------------------------------------------------------------


async def test_performance_connection_pooling(db_url: str) -> None:
    # -- example --
    # Production configuration
    db_config = DatabaseConfig(
        url=db_url,  # CHANGED: the test database
        pool_size=20,                # Base pool size
        max_overflow=50,             # Additional connections
        pool_timeout=30,             # Connection timeout
        pool_recycle=3600,           # Recycle after 1 hour
        pool_pre_ping=True,          # Validate before use
        pool_reset_on_return="commit"  # Reset behavior
    )
    # --
    manager = DatabaseConnectionManager(db_config)
    assert await manager.health_check()
    await manager.close()


async def test_performance_query_optimization(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()  # CHANGED: the session and repository id, left out
    async with manager.get_session() as session:
        # -- example --
        # Use indexes effectively
        stmt = select(PullRequest).where(
            PullRequest.repository_id == repo_id,  # Indexed
            PullRequest.state == "open"            # Indexed
        ).order_by(PullRequest.created_at.desc())  # Indexed

        # Eager load relationships to avoid N+1 queries
        stmt = select(PullRequest).options(
            selectinload(PullRequest.check_runs),
            selectinload(PullRequest.repository)
        )

        # Use specific columns when possible
        stmt = select(
            PullRequest.id,
            PullRequest.title,
            PullRequest.state
        ).where(PullRequest.state == "open")

        # Batch operations
        await session.execute(
            insert(PullRequest),
            [
                {"repository_id": repo_id, "pr_number": 1, "title": "PR 1"},
                {"repository_id": repo_id, "pr_number": 2, "title": "PR 2"},
                # ... more PRs
            ]
        )
        # --
        rows = (await session.execute(stmt.order_by(PullRequest.title))).all()
    assert [(title, state) for _, title, state in rows] == [("PR 1", PRState.OPEN),
                                                           ("PR 2", PRState.OPEN)]


async def test_performance_monitoring(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # CHANGED: every statement counts as slow here (slow_query_ms=0), so that the slow
    # query list has entries without a slow server
    manager = DatabaseConnectionManager(DatabaseConfig(url=db_url, slow_query_ms=0))
    await manager.initialize()
    # -- example --
    monitor = DatabaseMonitor(manager)

    # Get performance metrics
    metrics = await monitor.get_metrics()
    print(f"Active connections: {metrics.active_connections}")
    print(f"Query count: {metrics.query_count}")
    print(f"Average response time: {metrics.avg_response_time_ms}ms")

    # Monitor slow queries
    slow_queries = await monitor.get_slow_queries(threshold_ms=1000)
    for query in slow_queries:
        print(f"Slow query: {query.sql} ({query.duration_ms}ms)")
    # --
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Active connections: 0" and metrics.query_count > 0
    assert out[1] == f"Query count: {metrics.query_count}"
    assert metrics.avg_response_time_ms is not None and metrics.avg_response_time_ms >= 0
    every = await monitor.get_slow_queries(threshold_ms=0)
    assert len(every) >= 1 and every[0].duration_ms >= every[-1].duration_ms
    assert len(out) == 3 + len(slow_queries)
    await manager.close()


# -- Migrations ---------------------------------------------------------------------------

MIGRATION = '''"""Add check_runs table

Revision ID: abc123
Revises: def456
Create Date: 2024-01-15 10:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers
revision = 'abc123'
down_revision = 'def456'
branch_labels = None
depends_on = None

def upgrade():
    """Add check_runs table with proper indexes."""
    # Create table
    op.create_table(
        'check_runs',
        sa.Column('id', postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column('repository_id', postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column('pull_request_id', postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column('github_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )

    # Add indexes
    op.create_index('ix_check_runs_repository_id', 'check_runs', ['repository_id'])
    op.create_index('ix_check_runs_pull_request_id', 'check_runs', ['pull_request_id'])
    op.create_index('ix_check_runs_github_id', 'check_runs', ['github_id'])
    op.create_index('ix_check_runs_status', 'check_runs', ['status'])

    # Add foreign keys
    op.create_foreign_key(
        'fk_check_runs_repository_id',
        'check_runs', 'repositories',
        ['repository_id'], ['id'],
        ondelete='CASCADE'
    )

def downgrade():
    """Remove check_runs table."""
    op.drop_table('check_runs')
'''

# CHANGED: the revision it revises, left out: the repositories table it refers to
PREVIOUS = '''"""repositories"""
from alembic import op
import sqlalchemy as sa

revision = 'def456'
down_revision = None

def upgrade():
    op.create_table('repositories', sa.Column('id', sa.Uuid(), primary_key=True))

def downgrade():
    op.drop_table('repositories')
'''


def test_migration_best_practices(db_url: str, backend: Backend) -> None:
    manager = MigrationManager(db_url, script_location="migrations")
    manager.init("seed_004_models:Repository")  # the environment: storelayer migrate init
    versions = Path("migrations", "versions")
    (versions / "def456_repositories.py").write_text(PREVIOUS)
    script = MIGRATION
    if backend.features.batch_alter:
        # CHANGED: SQLite has no ALTER TABLE ... ADD CONSTRAINT: Alembic adds the foreign
        # key through batch mode (copy and move), as storelayer's autogenerate writes it
        script = script.replace("""    op.create_foreign_key(
        'fk_check_runs_repository_id',
        'check_runs', 'repositories',""", """    with op.batch_alter_table('check_runs') as batch:
      batch.create_foreign_key(
        'fk_check_runs_repository_id',
        'repositories',""")
        assert "batch.create_foreign_key" in script
    (versions / "abc123_add_check_runs_table.py").write_text(script)  # the example
    manager.upgrade()
    from sqlalchemy import inspect

    with manager.database.engine.connect() as connection:
        found = inspect(connection)
        assert {"ix_check_runs_status", "ix_check_runs_github_id"} <= {
            i["name"] for i in found.get_indexes("check_runs")}
        assert [fk["referred_table"] for fk in found.get_foreign_keys("check_runs")] == [
            "repositories"]
    manager.downgrade()
    assert manager.current() == ("def456",)
    manager.close()


# -- Testing Support ----------------------------------------------------------------------


@pytest.fixture
def memory_url(backend: Backend, db_url: str) -> str:
    """CHANGED: the document's "sqlite:///:memory:" on SQLite; the test database on the
    servers."""
    return "sqlite:///:memory:" if backend.name == "sqlite" else db_url


# -- example --
@pytest.fixture
async def db_manager(memory_url):  # CHANGED: the URL is a fixture (see memory_url)
    """Provide test database manager."""
    config = DatabaseConfig(url=memory_url)  # CHANGED: "sqlite:///:memory:"
    manager = DatabaseConnectionManager(config)
    await manager.initialize()
    yield manager
    await manager.close()

@pytest.fixture
async def session(db_manager):
    """Provide test database session."""
    async with db_manager.get_session() as session:
        yield session

@pytest.fixture
async def pr_repo(session):
    """Provide pull request repository."""
    from seed_004_models import PullRequestRepository
    return PullRequestRepository(session)
# --


@pytest.fixture
async def repo_repo(session):  # CHANGED: used by the relationships test, left out
    return RepositoryRepository(session)


# -- example --
@pytest.mark.asyncio
async def test_pull_request_creation(session, pr_repo):
    """Test pull request creation."""
    pr = await pr_repo.create(
        repository_id=uuid.uuid4(),
        pr_number=123,
        title="Test PR",
        author="testuser"
    )

    assert pr.id is not None
    assert pr.pr_number == 123
    assert pr.title == "Test PR"
    assert pr.created_at is not None
    assert pr.updated_at is not None

@pytest.mark.asyncio
async def test_pull_request_relationships(session, pr_repo, repo_repo):  # CHANGED: repo_repo
    """Test pull request relationships."""
    # Create repository first
    repo = await repo_repo.create(name="test-repo", full_name="user/test-repo")

    # Create pull request
    pr = await pr_repo.create(
        repository_id=repo.id,
        pr_number=123,
        title="Test PR"
    )

    # Load with relationships
    pr_with_repo = await pr_repo.get_with_repository(pr.id)
    assert pr_with_repo.repository.name == "test-repo"
# --


# -- Best Practices -----------------------------------------------------------------------


async def test_best_practice_repository_design(manager: DatabaseConnectionManager) -> None:
    # -- example --
    # ✅ Use repository pattern for data access
    class PullRequestService:
        def __init__(self, pr_repo: PullRequestRepository):
            self.pr_repo = pr_repo

        async def create_pr(self, data: dict) -> PullRequest:
            return await self.pr_repo.create(**data)
    # --
    async with manager.get_session() as session:
        service = PullRequestService(PullRequestRepository(session))
        pr = await service.create_pr({"repository_id": uuid.uuid4(), "pr_number": 7})
    assert await stored_prs(manager) == [(pr.pr_number, "", "open")]


async def test_best_practice_session_management(manager: DatabaseConnectionManager) -> None:
    repo_id = uuid.uuid4()
    # -- example --
    # ✅ Use context managers for sessions
    async with manager.get_session() as session:
        pr_repo = PullRequestRepository(session)  # CHANGED: bound to this session
        result = await pr_repo.create(repository_id=repo_id, pr_number=1)  # CHANGED: "..."
        # Session automatically closed

    # ✅ Use transactions for multiple operations
    async with manager.get_session() as session:
        pr_repo, check_repo = PullRequestRepository(session), CheckRunRepository(session)
        async with session.begin():
            pr = await pr_repo.create(repository_id=repo_id, pr_number=2)  # CHANGED: "..."
            check = await check_repo.create(pull_request_id=pr.id, name="CI")  # CHANGED
            # Automatically committed or rolled back
    # --
    assert [n for n, _, _ in await stored_prs(manager)] == [1, 2]
    assert result.pr_number == 1 and check.name == "CI"


async def test_best_practice_performance(manager: DatabaseConnectionManager) -> None:
    page = 0  # CHANGED: the page number, left out
    # -- example --
    # ✅ Use eager loading for relationships
    stmt = select(PullRequest).options(
        selectinload(PullRequest.check_runs)
    )

    # ✅ Use specific columns when possible
    stmt = select(PullRequest.id, PullRequest.title)

    # ✅ Use pagination for large datasets
    stmt = select(PullRequest).limit(100).offset(page * 100)
    # --
    async with manager.get_session() as session:
        assert list((await session.execute(stmt)).scalars()) == []


async def test_best_practice_error_handling(
    manager: DatabaseConnectionManager, backend: Backend
) -> None:
    repo_id = uuid.uuid4()
    async with manager.get_session() as session:
        await PullRequestRepository(session).create(repository_id=repo_id, pr_number=1)
    caught: list[type[BaseException]] = []
    async with manager.get_session() as session:
        pr_repo = PullRequestRepository(session)  # CHANGED: the repository, left out
        try:
            # -- example --
            # ✅ Handle database errors appropriately
            try:
                pr = await pr_repo.create(repository_id=repo_id, pr_number=1)  # CHANGED: "..."
            except IntegrityError as e:
                if "duplicate key" in str(e):
                    raise ValueError("PR already exists")  # noqa: B904
                raise
            except DatabaseError:
                logger.error("Database error creating PR")
                raise
            # --
        except (ValueError, IntegrityError) as error:
            caught.append(type(error))
            await session.rollback()
        pr_id = (await pr_repo.list())[0].id
        # -- example --
        # ✅ Use get_by_id_or_raise for required entities
        pr = await pr_repo.get_by_id_or_raise(pr_id)  # Raises if not found
        # --
    # PostgreSQL says "duplicate key"; SQLite and MariaDB word it otherwise, and the
    # example re-raises the IntegrityError (storelayer's Conflict is one).
    if backend.name == "postgresql":
        assert caught == [ValueError]
    else:
        assert [c.__name__ for c in caught] == ["Conflict"]
    assert pr.pr_number == 1
