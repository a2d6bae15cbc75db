"""``storelayer.compat.guide.queries``: the guide's query classes are the reference
repositories under the guide's method names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from storelayer.reference.models import User
from storelayer.reference.repositories import (
    CommandRepository,
    MetricAggregate,
    MetricRepository,
    UserRepository,
)
from storelayer.reference.repositories.metrics import DEFAULT_PERCENTILES
from storelayer.repository import Page

__all__ = ["CommandQueries", "PerformanceMetricQueries", "UserQueries"]


class UserQueries(UserRepository):
    """``get_by_id``, ``find_by_username``, ``get_active_users``, ``search_users``,
    ``paginate`` (and every ``UserRepository`` method)."""

    def find_by_username(self, username: str) -> User | None:
        """The user called ``username``, or None."""
        return self.get_by_username(username)

    def paginate(self, page: int = 1, per_page: int = 20) -> Page[User]:
        """Offset page ``page`` of the users, by key: ``items``, ``total``, ``pages``,
        ``has_next``, ``has_prev``."""
        return self.page(page, per_page)


class CommandQueries(CommandRepository):
    """``find_by_status``, ``get_recent_commands``, ``get_failed_commands`` (and every
    ``CommandRepository`` method)."""


class PerformanceMetricQueries(MetricRepository):
    """``aggregate_by_name`` with the guide's ``start_date``/``end_date``."""

    def aggregate_by_name(
        self,
        name: str,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        *,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ) -> MetricAggregate:
        """Count, avg, min, max (and percentiles) of metric ``name`` recorded from
        ``start_date`` to ``end_date`` (either open); ``stats["count"]``."""
        return super().aggregate_by_name(name, start_date, end_date, percentiles=percentiles)
