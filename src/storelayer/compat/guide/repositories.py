"""``storelayer.compat.guide.repositories``: the reference repositories with the guide's
call shapes (``start_command(args="--verbose")``, ``bulk_create`` returning the
objects)."""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from storelayer.reference.models import Command, Project, User
from storelayer.reference.repositories import (
    AuditRepository,
    CacheRepository,
    ConfigurationRepository,
    MetricRepository,
    ProjectRepository,
    SessionTokenRepository,
)
from storelayer.reference.repositories import CommandRepository as _Commands
from storelayer.reference.repositories import UserRepository as _Users

__all__ = [
    "AuditRepository",
    "CacheRepository",
    "CommandRepository",
    "ConfigurationRepository",
    "MetricRepository",
    "ProjectRepository",
    "SessionTokenRepository",
    "UserRepository",
]


class UserRepository(_Users):
    """The reference ``UserRepository``; ``bulk_create`` returns the users it made."""

    def bulk_create(
        self, rows: Iterable[Mapping[str, Any] | User], *, returning: bool = True
    ) -> Any:
        """Insert many users; returns them (``returning=False``: how many, faster)."""
        return super().bulk_create(rows, returning=returning)  # type: ignore[call-overload]


class CommandRepository(_Commands):
    """The reference ``CommandRepository``; ``start_command`` also takes the arguments
    as one command line (``args="--verbose"``), split as a POSIX shell would."""

    def start_command(
        self,
        name: str,
        args: Iterable[str] | str = (),
        *,
        user: User | int | None = None,
        project: Project | int | None = None,
        started_at: dt.datetime | None = None,
        user_id: int | None = None,
        project_id: int | None = None,
    ) -> Command:
        """Record that a command started; ``args`` a list, or one command line."""
        listed = shlex.split(args) if isinstance(args, str) else args
        return super().start_command(
            name, listed, user=user, project=project, started_at=started_at,
            user_id=user_id, project_id=project_id,
        )
