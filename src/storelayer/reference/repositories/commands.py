"""Commands: their life (start, complete, fail) and the queries of a dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from storelayer.errors import Conflict, QueryError
from storelayer.reference.models import Command, CommandStatus, Project, User
from storelayer.reference.repositories._ids import id_of
from storelayer.reference.types import utcnow
from storelayer.repository import Repository

DEFAULT_LIMIT = 100


def _with_people(stmt: Select[Command]) -> Select[Command]:
    """Load each command's user and project in the same query (no N+1)."""
    return stmt.options(joinedload(Command.user), joinedload(Command.project))


class CommandRepository(Repository[Command]):
    """Runs of commands, by user and project."""

    model = Command

    def start_command(
        self,
        name: str,
        args: Iterable[str] = (),
        *,
        user: User | int | None = None,
        project: Project | int | None = None,
        started_at: dt.datetime | None = None,
        user_id: int | None = None,
        project_id: int | None = None,
    ) -> Command:
        """Record that a command started running now (or at ``started_at``). ``args``
        is a list of arguments (``["--verbose"]``); the user and project are given as
        rows or keys (``user=`` or ``user_id=``, ``project=`` or ``project_id=``)."""
        if isinstance(args, (str, bytes)):
            raise QueryError(
                "start_command(args=...) takes a list of arguments, not one string (it "
                "would be stored one character per argument): pass ['--verbose'], or "
                "shlex.split(text)"
            )
        return self.create(
            name=name,
            args=list(args),
            user_id=id_of(_one_of("user", user, user_id)),
            project_id=id_of(_one_of("project", project, project_id)),
            status=CommandStatus.RUNNING,
            started_at=started_at or utcnow(),
        )

    def complete_command(
        self,
        command: Command | int,
        *,
        exit_code: int = 0,
        stdout: str | None = None,
        stderr: str | None = None,
        finished_at: dt.datetime | None = None,
    ) -> Command:
        """Record that a command ended: ``success`` on exit code 0, else ``failed``."""
        status = CommandStatus.SUCCESS if exit_code == 0 else CommandStatus.FAILED
        return self._finish(command, status, finished_at, exit_code=exit_code,
                            stdout=stdout, stderr=stderr)

    def fail_command(
        self,
        command: Command | int,
        error: str | BaseException,
        *,
        exit_code: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        finished_at: dt.datetime | None = None,
    ) -> Command:
        """Record that a command could not run to its end, and why."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return self._finish(command, CommandStatus.FAILED, finished_at, exit_code=exit_code,
                            stdout=stdout, stderr=stderr, error=message)

    def _finish(
        self,
        command: Command | int,
        status: CommandStatus,
        finished_at: dt.datetime | None,
        **values: object,
    ) -> Command:
        row = command if isinstance(command, Command) else self.get_or_raise(command)
        if row.status not in (CommandStatus.PENDING, CommandStatus.RUNNING):
            raise Conflict(
                f"command {row.id} already finished with status {row.status.value!r}"
            )
        finished = finished_at or utcnow()
        started = row.started_at or finished
        duration = max(0, round((finished - started).total_seconds() * 1000))
        return self.update(row, status=status, finished_at=finished, duration_ms=duration,
                           **values)

    def find_by_status(
        self,
        status: CommandStatus | str,
        *,
        user: User | int | None = None,
        project: Project | int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Command]:
        """Commands with ``status``, newest first, with user and project loaded."""
        stmt = select(Command).where(Command.status == CommandStatus(status))
        if user is not None:
            stmt = stmt.where(Command.user_id == id_of(user))
        if project is not None:
            stmt = stmt.where(Command.project_id == id_of(project))
        stmt = stmt.order_by(Command.started_at.desc(), Command.id.desc()).limit(limit)
        return list(self.session.scalars(_with_people(stmt)))

    def get_recent_commands(
        self,
        hours: float = 24,
        *,
        status: CommandStatus | str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Command]:
        """Commands started in the last ``hours``, newest first, with user and project
        loaded."""
        since = utcnow() - dt.timedelta(hours=hours)
        stmt = select(Command).where(Command.started_at >= since)
        if status is not None:
            stmt = stmt.where(Command.status == CommandStatus(status))
        stmt = stmt.order_by(Command.started_at.desc(), Command.id.desc()).limit(limit)
        return list(self.session.scalars(_with_people(stmt)))

    def get_failed_commands(
        self, hours: float = 24, *, limit: int = DEFAULT_LIMIT
    ) -> list[Command]:
        """Commands that failed among those started in the last ``hours``."""
        return self.get_recent_commands(hours, status=CommandStatus.FAILED, limit=limit)


def _one_of(name: str, row: object, key: int | None) -> object:
    """``user=`` or ``user_id=``: the one given (``QueryError`` when both are)."""
    if row is not None and key is not None:
        raise QueryError(f"pass {name}= or {name}_id=, not both")
    return row if key is None else key
