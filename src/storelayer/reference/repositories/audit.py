"""The audit log: who did what to which entity, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from storelayer.reference.models import AuditLog, User
from storelayer.reference.repositories._ids import id_of
from storelayer.repository import Repository


class AuditRepository(Repository[AuditLog]):
    """Append-only records of actions."""

    model = AuditLog

    def record(
        self,
        action: str,
        entity_type: str,
        entity_id: object = None,
        *,
        actor: User | int | None = None,
        details: dict[str, Any] | None = None,
        ip: str | None = None,
    ) -> AuditLog:
        """Append one record; ``entity_id`` is kept as text (integer and UUID keys)."""
        return self.create(
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            actor_id=id_of(actor),
            details=details,
            ip=ip,
        )

    def for_entity(
        self, entity_type: str, entity_id: object, *, limit: int = 100
    ) -> list[AuditLog]:
        """The history of one entity, newest first, each with its actor loaded."""
        stmt = (
            select(AuditLog)
            .where(AuditLog.entity_type == entity_type, AuditLog.entity_id == str(entity_id))
            .options(joinedload(AuditLog.actor))
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))
