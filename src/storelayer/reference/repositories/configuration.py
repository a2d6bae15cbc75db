"""Per-project configuration: JSON values by key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storelayer.reference.models import Configuration, Project
from storelayer.reference.repositories._ids import id_of
from storelayer.reference.types import utcnow
from storelayer.repository import Repository


class ConfigurationRepository(Repository[Configuration]):
    """Settings of projects. The methods are ``get_value``/``set_value`` because
    ``get`` is the generic repository's lookup by primary key."""

    model = Configuration

    def get_value(self, project: Project | int, key: str, default: Any = None) -> Any:
        """The value of ``key`` in ``project``, or ``default``."""
        row = self.get_by(project_id=id_of(project), key=key)
        return default if row is None else row.value

    def set_value(self, project: Project | int, key: str, value: Any) -> None:
        """Set ``key`` in ``project`` to ``value`` (insert or update, atomically)."""
        row = {"project_id": id_of(project), "key": key, "value": value,
               "updated_at": utcnow()}
        self.upsert_many([row], on=["project_id", "key"], update=["value", "updated_at"])

    def values(self, project: Project | int) -> dict[str, Any]:
        """Every setting of ``project``, by key."""
        stmt = select(Configuration.key, Configuration.value).where(
            Configuration.project_id == id_of(project)
        ).order_by(Configuration.key)
        return {row.key: row.value for row in self.session.execute(stmt)}

    def delete_value(self, project: Project | int, key: str) -> bool:
        """Remove ``key`` from ``project``; whether it was set."""
        return self.delete_where(project_id=id_of(project), key=key) > 0
