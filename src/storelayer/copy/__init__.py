"""``storelayer copy``: one database into another, across backends, keeping the
application's schema (models or migrations where known), rows checked by count and
checksum, the target left as it was found when the copy fails or is stopped."""

from storelayer.copy.marker import prune_stale
from storelayer.copy.run import CopyInterrupted, CopyReport, copy_database
from storelayer.copy.schema import SchemaSource

__all__ = ["CopyInterrupted", "CopyReport", "SchemaSource", "copy_database", "prune_stale"]
