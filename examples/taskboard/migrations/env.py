"""Alembic environment of taskboard.models.

storelayer connects, takes the migration lock and runs the migrations:
storelayer migrate -d migrations upgrade
"""

from storelayer.migrations import run_migrations
from taskboard.models import Base

run_migrations(Base.metadata, version_table='taskboard_versions')
