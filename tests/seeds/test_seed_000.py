"""Every Python example of the "Database Layer Guide" (shared/seeds/000_...txt), run on
each backend through ``storelayer.compat.guide``.

Each test holds one example in its ``# -- example --`` block, as the document writes it
but for ``specify_cli.db`` read as ``storelayer.compat.guide``. A line marked ``# CHANGED:``
says what the document left out or what could not run as written, and why; the list is
in docs/guide/from-the-guides.md. Above the block: what the example assumes exists;
below it: checks that what it did happened.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Index, Integer, String, inspect
from sqlalchemy.orm import DeclarativeBase, joinedload

from storelayer import Backend, Conflict, StorelayerError
from storelayer.compat.guide import (
    Command,
    CommandRepository,
    ExecutionStatus,
    MetricType,
    PerformanceMetric,
    Project,
    User,
    UserRepository,
    close_db,
    get_engine,
    get_session,
    get_session_factory,
    health_check,
    init_db,
)
from storelayer.compat.guide.migrations import (
    MigrationManager,
    backup_database,
    get_current_revision,
    restore_database,
    verify_schema,
)
from storelayer.compat.guide.queries import CommandQueries, PerformanceMetricQueries, UserQueries
from storelayer.compat.guide.session import DatabaseManager, RetryConfig
from storelayer.reference import MetricRepository, ProjectRepository
from storelayer.testing import provision_or_skip

UTC = timezone.utc  # datetime.UTC from Python 3.11


@pytest.fixture
def guide(db_url: str) -> Any:
    """The default database, opened by ``init_db`` (examples that do not open it
    assume it is), closed after the test."""
    init_db(db_url)
    yield db_url
    close_db()


@pytest.fixture
def alice(guide: str) -> User:
    """The user the examples read, update and count on."""
    with get_session() as session:
        return UserRepository(session).create_user(
            username="alice", email="alice@example.com", password_hash=b"hashed"
        )


def user_count() -> int:
    with get_session() as session:
        return UserRepository(session).count()


# -- Quick Start ------------------------------------------------------------------------


def test_quick_start_basic_usage(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # -- example --
    # Initialize database
    init_db(db_url)  # CHANGED: the test database, not "sqlite:///./specify.db"

    # Use repository pattern
    with get_session() as session:
        repo = UserRepository(session)
        user = repo.create_user(
            username="alice",
            email="alice@example.com",
            password_hash=b"hashed_password"
        )
        print(f"Created user: {user.id}")
    # --
    assert capsys.readouterr().out == "Created user: 1\n"
    close_db()


# -- Database Models --------------------------------------------------------------------


def test_models_user_project_command_metric(alice: User) -> None:
    user = alice
    # -- example --
    user = User(
        username="alice",
        email="alice@example.com",
        password_hash=b"hashed_password",
        full_name="Alice Smith",
        is_active=True,
        is_admin=False
    )
    # --
    user = alice  # CHANGED: the next examples use a stored user (user.id)
    # -- example --
    project = Project(
        name="Awesome API",
        slug="awesome-api",
        owner_id=user.id,
        description="RESTful API service",
        repository_url="https://github.com/alice/awesome-api"
    )
    # --
    with get_session() as session:
        session.add(project)
    # -- example --
    command = Command(
        name="specify init",
        args="--verbose",
        user_id=user.id,
        project_id=project.id,
        status=ExecutionStatus.RUNNING,
        started_at=datetime.now(UTC)
    )
    # --
    command.args = ["--verbose"]  # CHANGED: the column holds a list of arguments
    with get_session() as session:
        session.add(command)
    # -- example --
    metric = PerformanceMetric(
        name="execution_time",
        value=150.5,
        type=MetricType.TIMER,
        unit="ms",
        command_id=command.id
    )
    # --
    with get_session() as session:
        session.add(metric)
    with get_session() as session:
        stored = session.get(PerformanceMetric, metric.id)
        assert stored is not None and stored.command_id == command.id
        assert stored.command is not None and stored.command.project_id == project.id


# -- Session Management -----------------------------------------------------------------

INIT_URLS = {
    "sqlite": "sqlite:///./specify.db",
    "postgresql": "postgresql://user:password@localhost/specify_db",
    "mysql": "mysql+pymysql://user:password@localhost/specify_db",
}


def test_session_database_initialization(db_url: str, backend: Backend) -> None:
    # CHANGED: each backend runs its own line; the server URLs name the test database
    url = dict.fromkeys(INIT_URLS, db_url)
    url["sqlite"] = INIT_URLS["sqlite"] if backend.name == "sqlite" else db_url
    # -- example --
    # SQLite (development)
    if backend.name == "sqlite":
        init_db(url["sqlite"])

    # PostgreSQL (production)
    if backend.name == "postgresql":
        init_db(url["postgresql"])

    # MySQL (alternative production)
    if backend.name == "mysql":
        init_db(url["mysql"])
    # --
    assert verify_schema(get_engine())["valid"]
    close_db()


def test_session_connection_pooling(db_url: str) -> None:
    # -- example --
    manager = DatabaseManager(
        url=db_url,             # CHANGED: the test database
        pool_size=10,           # Base pool size
        max_overflow=20,        # Additional connections
        pool_timeout=30.0,      # Checkout timeout (seconds)
        pool_recycle=3600,      # Recycle connections (seconds)
    )
    # --
    settings = manager.database.settings
    assert (settings.pool_size, settings.max_overflow) == (10, 20)
    assert (settings.pool_timeout, settings.pool_recycle) == (30.0, 3600)
    manager.close()


def test_session_retry_logic(db_url: str) -> None:
    # -- example --
    retry_config = RetryConfig(
        max_attempts=3,         # Retry attempts
        initial_delay=0.1,      # Initial delay (seconds)
        max_delay=5.0,          # Maximum delay (seconds)
        exponential_base=2.0    # Backoff multiplier
    )

    manager = DatabaseManager(
        url=db_url,  # CHANGED: "postgresql://..." is a placeholder
        retry_config=retry_config
    )
    # --
    assert manager.database.retry_policy == retry_config
    assert [retry_config.delay(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    manager.close()


def test_session_context_manager(alice: User) -> None:
    # -- example --
    # Automatic commit and cleanup
    with get_session() as session:
        user = session.query(User).first()
        user.full_name = "Updated Name"
        # Automatically commits on exit
    # --
    with get_session() as session:
        assert session.get(User, alice.id).full_name == "Updated Name"


def test_session_manual_management(alice: User) -> None:
    # -- example --
    SessionFactory = get_session_factory()
    session = SessionFactory()

    try:
        user = session.query(User).first()
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
    # --
    assert user.username == "alice"


# -- Query Patterns ---------------------------------------------------------------------


def test_queries_basic(alice: User) -> None:
    # -- example --
    with get_session() as session:
        queries = UserQueries(session)

        # Find by ID
        user = queries.get_by_id(1)

        # Find by username
        user = queries.find_by_username("alice")

        # Get all active users
        users = queries.get_active_users(limit=10)

        # Search users
        results = queries.search_users("alice", limit=5)
    # --
    assert user.id == 1
    assert [u.username for u in users] == [u.username for u in results] == ["alice"]


def seed_commands(user: User) -> None:
    """Commands of the last day, one of each outcome."""
    with get_session() as session:
        repo = CommandRepository(session)
        repo.complete_command(repo.start_command("specify init", user=user), exit_code=0)
        repo.fail_command(repo.start_command("specify check", user=user), error="boom")
        repo.start_command("specify build", user=user)


def test_queries_advanced_filtering(alice: User) -> None:
    seed_commands(alice)
    # -- example --
    with get_session() as session:
        queries = CommandQueries(session)

        # Filter by status
        success_cmds = queries.find_by_status("success", limit=10)

        # Get recent commands
        recent = queries.get_recent_commands(hours=24, limit=100)

        # Get failed commands
        failed = queries.get_failed_commands(hours=24)
    # --
    assert [c.name for c in success_cmds] == ["specify init"]
    assert len(recent) == 3
    assert [c.name for c in failed] == ["specify check"]


def test_queries_aggregation(guide: str, capsys: pytest.CaptureFixture[str]) -> None:
    with get_session() as session:
        metrics = MetricRepository(session)
        for value in (100.0, 200.0, 300.0):
            metrics.record("execution_time", value, type="timer")
        metrics.record("execution_time", 999.0, recorded_at=datetime.now(UTC) - timedelta(days=8))
    # -- example --
    with get_session() as session:
        queries = PerformanceMetricQueries(session)

        # Aggregate by name
        stats = queries.aggregate_by_name(
            "execution_time",
            start_date=datetime.now(UTC) - timedelta(days=7)
        )

        print(f"Count: {stats['count']}")
        print(f"Average: {stats['avg']}")
        print(f"Min: {stats['min']}")
        print(f"Max: {stats['max']}")
    # --
    assert capsys.readouterr().out == "Count: 3\nAverage: 200.0\nMin: 100.0\nMax: 300.0\n"


def test_queries_pagination(guide: str, capsys: pytest.CaptureFixture[str]) -> None:
    with get_session() as session:
        UserRepository(session).bulk_create(
            [{"username": f"user{i:02d}", "email": f"user{i:02d}@example.com",
              "password_hash": b"h"} for i in range(25)]
        )
    # -- example --
    with get_session() as session:
        queries = UserQueries(session)

        # Get page 1 (20 items per page)
        page = queries.paginate(page=1, per_page=20)

        print(f"Page {page.page} of {page.pages}")
        print(f"Total items: {page.total}")
        print(f"Has next: {page.has_next}")
        print(f"Has previous: {page.has_prev}")

        for user in page.items:
            print(user.username)
    # --
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["Page 1 of 2", "Total items: 25", "Has next: True", "Has previous: False"]
    assert lines[4:] == [f"user{i:02d}" for i in range(20)]


# -- Repository Pattern -----------------------------------------------------------------


def test_repository_crud(guide: str) -> None:
    # -- example --
    with get_session() as session:
        repo = UserRepository(session)

        # Create
        user = repo.create_user(
            username="alice",
            email="alice@example.com",
            password_hash=b"hashed"
        )

        # Read
        user = repo.get(user.id)
        user = repo.get_by_username("alice")

        # Update
        updated = repo.update(user.id, {"full_name": "Alice Smith"})

        # Delete
        repo.delete(user.id)
    # --
    assert updated.full_name == "Alice Smith"
    assert user_count() == 0


def test_repository_bulk_operations(guide: str) -> None:
    # -- example --
    with get_session() as session:
        repo = UserRepository(session)

        # Bulk create
        users_data = [
            {"username": f"user{i}", "email": f"user{i}@example.com",
             "password_hash": b"hash"}
            for i in range(100)
        ]
        users = repo.bulk_create(users_data)

        # Bulk update
        updates = [
            {"id": 1, "full_name": "User One"},
            {"id": 2, "full_name": "User Two"},
        ]
        count = repo.bulk_update(updates)
    # --
    assert [u.id for u in users] == list(range(1, 101))
    assert count == 2
    with get_session() as session:
        assert UserRepository(session).get(2).full_name == "User Two"


def test_repository_domain_specific_methods(alice: User) -> None:
    with get_session() as session:
        ProjectRepository(session).create(name="Awesome API", slug="awesome-api",
                                          owner_id=alice.id)
    # -- example --
    with get_session() as session:
        repo = CommandRepository(session)

        # Start command
        cmd = repo.start_command(
            name="specify init",
            args="--verbose",
            user_id=1,
            project_id=1
        )

        # Complete command
        repo.complete_command(
            cmd.id,
            exit_code=0,
            stdout="Success"
        )

        # CHANGED: the document then fails the command it just completed, which
        # storelayer refuses (Conflict: it already finished): fail another one
        cmd = repo.start_command(name="specify init", args="--verbose", user_id=1, project_id=1)
        # Fail command
        repo.fail_command(cmd.id, error="Validation failed")
    # --
    with get_session() as session:
        done = CommandRepository(session).list(order_by="id")
    assert [(c.args, c.status, c.user_id, c.project_id) for c in done] == [
        (["--verbose"], ExecutionStatus.SUCCESS, 1, 1),
        (["--verbose"], ExecutionStatus.FAILED, 1, 1),
    ]
    with get_session() as session, pytest.raises(Conflict, match="already finished"):
        CommandRepository(session).fail_command(done[0].id, error="Validation failed")


# -- Migrations -------------------------------------------------------------------------


def test_migrations(guide: str, capsys: pytest.CaptureFixture[str]) -> None:
    # -- example --
    manager = MigrationManager()

    # Initialize migration environment
    manager.init()
    # --
    assert (Path("migrations") / "env.py").is_file()
    # -- example --
    # Auto-generate from model changes
    manager.create_migration("add_user_fields")

    # Manual migration
    manager.create_migration("custom_data_migration", autogenerate=False)
    # --
    # CHANGED: "abc123" and "xyz789" stand for revisions: the two just written
    second, first = (entry.revision for entry in manager.history())
    abc123, xyz789 = second, first
    # -- example --
    # Upgrade to latest
    manager.upgrade()

    # Upgrade to specific revision
    manager.upgrade(abc123)

    # Downgrade one version
    manager.downgrade()
    # --
    assert manager.current() == (first,)
    # -- example --
    # Downgrade to specific revision
    manager.downgrade(xyz789)
    # --
    manager.upgrade()
    capsys.readouterr()
    # -- example --
    # Get current revision
    current = manager.current()
    print(f"Current revision: {current}")

    # Get migration history
    history = manager.history(verbose=True)
    for entry in history:
        print(f"{entry['revision']}: {entry['message']}")
    # --
    assert capsys.readouterr().out == (
        f"Current revision: ('{second}',)\n{second}: custom_data_migration\n"
        f"{first}: add_user_fields\n"
    )


def test_migrations_schema_verification(guide: str, capsys: pytest.CaptureFixture[str]) -> None:
    # -- example --
    engine = get_engine()
    result = verify_schema(engine)

    if result["valid"]:
        print("Schema is valid")
    else:
        print(f"Missing tables: {result['missing_tables']}")
        print(f"Extra tables: {result['extra_tables']}")
        print(f"Column issues: {result['column_issues']}")
    # --
    assert capsys.readouterr().out == "Schema is valid\n"
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE cache_entries")
    assert verify_schema(engine).missing_tables == ["cache_entries"]


# -- Performance Tuning -----------------------------------------------------------------


def test_performance_indexing_strategy(db_url: str) -> None:
    class Base(DeclarativeBase):  # CHANGED: the document's Base is not shown
        pass

    # -- example --
    # Example from models.py
    class Command(Base):
        __tablename__ = "indexed_commands"  # CHANGED: a table name and a key, left out
        id = Column(Integer, primary_key=True)
        # Single column indexes
        command_id = Column(String(36), index=True)
        name = Column(String(200), index=True)
        user_id = Column(Integer)  # CHANGED: the columns the indexes name, left out
        project_id = Column(Integer)
        status = Column(String(16))
        started_at = Column(String(32))

        # Composite indexes
        __table_args__ = (
            Index("idx_command_user_project", "user_id", "project_id"),
            Index("idx_command_started_at", "started_at"),
            Index("idx_command_status_started", "status", "started_at"),
        )
    # --
    manager = DatabaseManager(db_url)
    Base.metadata.create_all(manager.engine)
    indexes = {i["name"]: i["column_names"] for i in inspect(manager.engine).get_indexes(
        "indexed_commands")}
    manager.close()
    assert indexes["idx_command_user_project"] == ["user_id", "project_id"]
    assert indexes["idx_command_status_started"] == ["status", "started_at"]
    assert {"idx_command_started_at", "ix_indexed_commands_name"} <= set(indexes)


def test_performance_query_optimization(alice: User) -> None:
    seed_commands(alice)
    # -- example --
    with get_session() as session:
        # Eager loading to avoid N+1 queries
        commands = (
            session.query(Command)
            .options(joinedload(Command.user))
            .filter(Command.status == "success")
            .all()
        )
    # --
    assert [(c.name, c.user.username) for c in commands] == [("specify init", "alice")]


def test_performance_connection_pool_tuning(db_url: str) -> None:
    # -- example --
    # For high-traffic applications
    manager = DatabaseManager(
        url=db_url,            # CHANGED: "postgresql://..." is a placeholder
        pool_size=20,          # Larger pool
        max_overflow=40,       # More overflow
        pool_timeout=60.0,     # Longer timeout
        pool_recycle=1800,     # Recycle more frequently
    )
    # --
    assert manager.database.settings.pool_size == 20
    with manager.get_session() as session:
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
    manager.close()


def test_performance_query_result_caching(guide: str) -> None:
    from storelayer.compat.guide import CacheRepository

    calls: list[int] = []

    def expensive_query() -> dict[str, int]:  # CHANGED: left out by the document
        calls.append(1)
        return {"answer": 42}

    def cached_result() -> Any:  # CHANGED: the example returns, so it is a function body
        # -- example --
        with get_session() as session:
            cache_repo = CacheRepository(session)

            # Check cache first
            cached = cache_repo.get_cache("expensive_query_result")
            if cached:
                return cached

            # Execute expensive query
            result = expensive_query()

            # Cache result for 1 hour
            cache_repo.set_cache(
                "expensive_query_result",
                result,
                ttl_seconds=3600
            )
        # --
        return result

    assert cached_result() == cached_result() == {"answer": 42}
    assert calls == [1]


# -- Production Deployment --------------------------------------------------------------


def test_production_postgresql_configuration(db_url: str, backend: Backend) -> None:
    # -- example --
    init_db(
        url=db_url,  # CHANGED: the test database
        pool_size=20,
        max_overflow=40,
        echo=False  # Disable query logging in production
    )
    # --
    settings = get_engine().pool
    assert health_check()["healthy"]
    if backend.features.server:
        assert settings.size() == 20  # type: ignore[attr-defined]
    close_db()


def test_production_environment_based_configuration(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)  # CHANGED: the environment is the test's
    # -- example --
    DATABASE_URL = os.getenv(
        "DATABASE_URL",
        "sqlite:///./specify.db"  # Default fallback
    )

    init_db(DATABASE_URL)
    # --
    assert get_engine().url.database == DatabaseManager(db_url).engine.url.database
    close_db()
    # The module-level functions open DATABASE_URL by themselves when init_db was not called.
    assert health_check()["healthy"]
    close_db()


def test_production_health_checks(guide: str, capsys: pytest.CaptureFixture[str]) -> None:
    # -- example --
    result = health_check()

    if result["healthy"]:
        print(f"Database OK (latency: {result['latency_ms']:.2f}ms)")
    else:
        print(f"Database ERROR: {result['error']}")
    # --
    assert capsys.readouterr().out.startswith("Database OK (latency: ")


def test_production_read_replicas(guide: str) -> None:
    # -- example --
    # Write database
    write_db = DatabaseManager(
        url=guide  # CHANGED: the test database stands for the primary...
    )

    # Read replica
    read_db = DatabaseManager(
        url=guide  # CHANGED: ...and for its replica (the example starts no servers)
    )

    # Use read replica for queries
    with read_db.get_session() as session:
        users = session.query(User).all()

    # Use primary for writes
    with write_db.get_session() as session:
        user = User(username="new",
                    email="new@example.com", password_hash=b"h")  # CHANGED: required, left out
        session.add(user)
    # --
    assert users == []
    assert user_count() == 1
    write_db.close()
    read_db.close()


# -- Backup and Restore -----------------------------------------------------------------


def test_backup_and_restore(
    alice: User, backend: Backend, storelayer_provisioner: Any
) -> None:
    # -- example --
    engine = get_engine()
    backup_database(engine, "backup_2025-01-15.db")
    # --
    assert Path("backup_2025-01-15.db").is_file()
    target: Any = "specify.db"
    if backend.features.server:  # CHANGED: a server's dump restores into a server database
        target = provision_or_skip(storelayer_provisioner, backend)
    # -- example --
    restore_database(
        backup_path="backup_2025-01-15.db",
        target_path=target  # CHANGED: "specify.db" on SQLite (as written), else a database
    )
    # --
    restored = DatabaseManager(target if backend.features.server else "sqlite:///specify.db")
    with restored.get_session() as session:
        assert [u.username for u in session.query(User)] == ["alice"]
    restored.close()


def test_backup_automated(alice: User) -> None:
    # -- example --
    def create_daily_backup():
        """Create timestamped daily backup."""
        from storelayer.compat.guide import get_engine
        from storelayer.compat.guide.migrations import backup_database

        engine = get_engine()
        timestamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        backup_path = Path(f"backups/specify_{timestamp}.db")
        backup_path.parent.mkdir(exist_ok=True)

        backup_database(engine, backup_path)
        print(f"Backup created: {backup_path}")
    # --
    create_daily_backup()
    assert len(list(Path("backups").glob("specify_*.db"))) == 1


# -- Best Practices ---------------------------------------------------------------------


def test_best_practice_context_managers(guide: str) -> None:
    # -- example --
    # Good
    with get_session() as session:
        repo = UserRepository(session)
        user = repo.create_user(
            "alice", "alice@example.com", password_hash=b"h"  # CHANGED: "..." in the document
        )
    # --
    assert user.id == 1


def test_best_practice_repositories(alice: User) -> None:
    # -- example --
    # Good - Repository pattern
    with get_session() as session:
        repo = UserRepository(session)
        user = repo.get_by_username("alice")

    # Avoid - Direct queries
    with get_session() as session:
        user2 = session.query(User).filter_by(username="alice").first()  # CHANGED: user2
    # --
    assert user.id == user2.id == alice.id


def test_best_practice_query_patterns(alice: User) -> None:
    seed_commands(alice)
    with get_session() as session:  # CHANGED: the session, left out
        # -- example --
        # Good - Pre-built query patterns
        queries = CommandQueries(session)
        recent = queries.get_recent_commands(hours=24)
        # --
    assert len(recent) == 3


def test_best_practice_connection_pooling(db_url: str, backend: Backend) -> None:
    # -- example --
    # Production
    init_db(
        db_url,  # CHANGED: "postgresql://..." is a placeholder
        pool_size=20,
        max_overflow=40
    )

    # Development
    init_db("sqlite:///./dev.db")
    # --
    assert get_engine().url.database.endswith("dev.db")
    assert Path("dev.db").is_file()
    close_db()


def test_best_practice_monitor_health(guide: str) -> None:
    alerts: list[str] = []
    alert_admin = alerts.append  # CHANGED: left out by the document
    # -- example --
    # Regular health checks
    result = health_check()
    if not result["healthy"]:
        alert_admin(result["error"])
    # --
    assert alerts == []


# -- Troubleshooting --------------------------------------------------------------------


def test_troubleshooting_pool_exhausted(db_url: str) -> None:
    # -- example --
    # Increase pool size and overflow
    manager = DatabaseManager(
        url=db_url,  # CHANGED: "..." is a placeholder
        pool_size=30,  # Increased
        max_overflow=60  # Increased
    )
    # --
    assert manager.database.settings.max_overflow == 60
    manager.close()


def test_troubleshooting_slow_queries(db_url: str) -> None:
    # -- example --
    # Enable query logging to identify slow queries
    manager = DatabaseManager(url=db_url, echo=True)  # CHANGED: "..." is a placeholder
    # --
    assert manager.engine.echo is True
    manager.close()


def test_troubleshooting_migration_conflicts(guide: str) -> None:
    engine = get_engine()  # CHANGED: the engine and the manager, left out
    manager = MigrationManager()
    manager.init()
    manager.create_migration("first")
    # -- example --
    current = get_current_revision(engine)
    schema = verify_schema(engine)

    # Stamp database if needed
    manager.stamp("head")
    # --
    assert current == "0002"
    assert schema.valid
    assert manager.is_up_to_date()


# -- What the guide's shapes refuse -----------------------------------------------------


def test_a_string_where_a_list_is_expected_is_a_clear_error(alice: User) -> None:
    from storelayer.reference import CommandRepository as CoreCommands

    with get_session() as session, pytest.raises(StorelayerError, match=r"args=.*list"):
        CoreCommands(session).start_command("specify init", args="--verbose")
