"""A JSON cache in the database, with expiry."""

from __future__ import annotations

import datetime as dt
from typing import Any

from storelayer.reference.models import CacheEntry
from storelayer.reference.types import utcnow
from storelayer.repository import Repository

_MISSING: Any = object()


class CacheRepository(Repository[CacheEntry]):
    """Keys to JSON values. An expired entry reads as missing until ``purge_expired``."""

    model = CacheEntry

    def get_cache(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when missing or expired."""
        entry = self.get_by(key=key)
        if entry is None or _expired(entry, utcnow()):
            return default
        return entry.value

    def has_cache(self, key: str) -> bool:
        """Whether ``key`` holds a live value (even ``None``)."""
        return self.get_cache(key, _MISSING) is not _MISSING

    def set_cache(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds`` (None: until deleted), in
        one atomic insert-or-update: concurrent writers never collide on the key."""
        now = utcnow()
        expires = None if ttl_seconds is None else now + dt.timedelta(seconds=ttl_seconds)
        row = {"key": key, "value": value, "expires_at": expires, "updated_at": now}
        self.upsert_many([row], on=["key"], update=["value", "expires_at", "updated_at"])

    def delete_cache(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_where(key=key) > 0

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Delete every expired entry; returns how many."""
        return self.delete_where(expires_at__lte=now or utcnow())


def _expired(entry: CacheEntry, now: dt.datetime) -> bool:
    return entry.expires_at is not None and entry.expires_at <= now
