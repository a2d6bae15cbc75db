"""``BackupManifest``: what a storelayer backup artifact holds, and how to trust it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from storelayer.errors import BackupError

#: Name of the artifact format, written into every manifest.
FORMAT_NAME = "storelayer-backup"
#: Version of the artifact format; a reader refuses a newer one.
FORMAT_VERSION = 1
#: Name of the manifest inside the artifact (the first member of the tar archive).
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class DumpInfo:
    """The native dump of the backend, before compression and encryption."""

    # File name of the native dump once unpacked.
    name: str
    # Bytes.
    size: int
    # Hex SHA-256 of the native dump.
    sha256: str
    # The tool that wrote it, with its version (``pg_dump 15.20``), if any.
    tool: str | None = None


@dataclass(frozen=True)
class PayloadInfo:
    """The stored payload: the dump, compressed, then encrypted."""

    # Member name inside the artifact.
    name: str
    # Bytes stored.
    size: int
    # Hex SHA-256 of the stored bytes: checkable without the decryption key.
    sha256: str
    # "zstd", "gzip" or "none".
    compression: str
    # "age" or None.
    encryption: str | None = None
    # Public keys (age recipients) the payload is encrypted to; never a secret.
    recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BackupManifest:
    """Everything known about a backup. Never holds a credential."""

    backend: str
    backup_format: str
    plugin: str | None
    plugin_version: str | None
    storelayer_version: str
    server_version: str
    database: str
    schema_revision: list[str]
    created_at: str
    tables: dict[str, int]
    dump: DumpInfo
    payload: PayloadInfo
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def created(self) -> dt.datetime:
        """``created_at`` as an aware datetime."""
        return dt.datetime.fromisoformat(self.created_at)

    @property
    def total_rows(self) -> int:
        """Rows in all tables."""
        return sum(self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)

    def to_json(self) -> bytes:
        """The manifest as stored in the artifact."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupManifest:
        """Parse a manifest, refusing another format or a newer version."""
        if data.get("format") != FORMAT_NAME:
            raise BackupError(f"not a storelayer backup manifest (format {data.get('format')!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BackupError(
                f"backup format version {version!r} is newer than this storelayer reads "
                f"({FORMAT_VERSION}): upgrade storelayer"
            )
        try:
            values = dict(data)
            values["dump"] = DumpInfo(**values["dump"])
            values["payload"] = PayloadInfo(**values["payload"])
            manifest = cls(**values)
        except (KeyError, TypeError) as error:
            raise BackupError(f"the backup manifest is malformed: {error}") from None
        manifest.validate()
        return manifest

    @classmethod
    def from_json(cls, raw: bytes) -> BackupManifest:
        """Parse the manifest as stored in the artifact."""
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise BackupError(f"the backup manifest is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise BackupError("the backup manifest is not a JSON object")
        return cls.from_dict(data)

    def validate(self) -> None:
        """Reject values a reader must not trust (names that are paths, bad counts)."""
        for name in (self.dump.name, self.payload.name):
            if (
                not name
                or "/" in name
                or "\\" in name
                or name.startswith(".")
                or name == MANIFEST_NAME
            ):
                raise BackupError(f"the backup manifest names an unsafe member {name!r}")
        if any(not isinstance(n, int) or n < 0 for n in self.tables.values()):
            raise BackupError("the backup manifest has an invalid row count")


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the microsecond (orders backups made within
    the same second)."""
    return dt.datetime.now(dt.timezone.utc).isoformat()
