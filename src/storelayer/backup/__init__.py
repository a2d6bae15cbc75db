"""Backups you can trust: one artifact format over every backend's native dump,
verification, safe restore, retention (``storelayer.copy`` copies across backends)."""

from storelayer.backup.artifact import ARTIFACT_SUFFIX, read_manifest
from storelayer.backup.counts import row_counts, table_checksum
from storelayer.backup.create import create_backup, default_artifact_name
from storelayer.backup.manifest import FORMAT_VERSION, BackupManifest, DumpInfo, PayloadInfo
from storelayer.backup.options import BackupOptions
from storelayer.backup.restore import RestoreReport, restore_backup
from storelayer.backup.retention import RetentionPolicy, prune, select_prunable
from storelayer.backup.tools import TOOLS_PATH_VARIABLE, Command, find_tool
from storelayer.backup.verify import VerifyReport, verify_backup

__all__ = [
    "ARTIFACT_SUFFIX",
    "FORMAT_VERSION",
    "TOOLS_PATH_VARIABLE",
    "BackupManifest",
    "BackupOptions",
    "Command",
    "DumpInfo",
    "PayloadInfo",
    "RestoreReport",
    "RetentionPolicy",
    "VerifyReport",
    "create_backup",
    "default_artifact_name",
    "find_tool",
    "prune",
    "read_manifest",
    "restore_backup",
    "row_counts",
    "select_prunable",
    "table_checksum",
    "verify_backup",
]
