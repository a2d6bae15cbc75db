"""Alembic environment of storelayer's reference schema.

The whole work (connecting through storelayer, the migration lock, batch mode where
the backend needs it, transactions) is ``storelayer.migrations.run_migrations``; an
application's own ``env.py`` is these same lines with its own metadata.
"""

from storelayer.migrations import run_migrations
from storelayer.reference.models import metadata

run_migrations(metadata)
