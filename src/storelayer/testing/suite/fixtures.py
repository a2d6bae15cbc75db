"""The suite's fixture (fresh ``conformance_*`` tables for every test) and the small
helpers its test modules share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect

from storelayer.database import Database
from storelayer.testing.suite.models import ConformanceBase, ConformanceUser

#: A fixed, timezone-aware instant the seeded rows count from.
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def conformance_tables(database: Database) -> Iterator[Database]:
    """Create the suite's tables empty before each test and drop them after it, so that
    every test starts from the same state whatever ran before it."""
    metadata = ConformanceBase.metadata
    metadata.drop_all(database.engine)
    metadata.create_all(database.engine)
    yield database
    metadata.drop_all(database.engine)


def user_row(i: int, **overrides: Any) -> dict[str, Any]:
    """The values of the ``i``-th seeded user; ``overrides`` replace any of them."""
    values: dict[str, Any] = {
        "username": f"user{i:05d}",
        "email": f"user{i:05d}@example.com",
        "full_name": f"User {i}",
        "balance": Decimal(i),
        "created_at": BASE_TIME + dt.timedelta(minutes=i),
        "is_active": True,
        "score": i,
    }
    values.update(overrides)
    return values


def add_users(database: Database, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert users in one committed unit of work."""
    with database.session() as s:
        s.repository(ConformanceUser).bulk_create(list(rows))


def seed_users(database: Database, count: int, **overrides: Any) -> None:
    """Insert users ``1..count`` built by ``user_row``."""
    add_users(database, [user_row(i, **overrides) for i in range(1, count + 1)])


def usernames(users: Sequence[ConformanceUser]) -> list[str]:
    """The usernames of ``users``, in order."""
    return [u.username for u in users]


def count_users(database: Database) -> int:
    """How many users are stored, read in a fresh unit of work."""
    with database.read_session() as s:
        return s.repository(ConformanceUser).count()


def users_table_exists(database: Database) -> bool:
    """Whether ``conformance_users`` is still there (nothing dropped it)."""
    return inspect(database.engine).has_table(ConformanceUser.__tablename__)


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime as is; a naive one read as UTC (how a backend without time
    zone support is documented to return the instant)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
