"""The generic repository: one implementation of CRUD, filters, pagination, bulk
writes, upserts and streaming over any SQLAlchemy declarative model."""

from storelayer.repository._page import MAX_PER_PAGE, KeysetPage, Page
from storelayer.repository._query import LOOKUPS
from storelayer.repository._sync import Repository

__all__ = ["LOOKUPS", "MAX_PER_PAGE", "KeysetPage", "Page", "Repository"]
