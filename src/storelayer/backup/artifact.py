"""The artifact file: an uncompressed tar archive holding ``manifest.json`` first, then
the payload. Written under a temporary name, fsynced, then renamed, so an interrupted
backup never leaves a file that looks valid; created 0600."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from storelayer.backup.children import scratch_prefix
from storelayer.backup.manifest import MANIFEST_NAME, BackupManifest
from storelayer.backup.payload import CHUNK
from storelayer.backup.stream import Digest, Tap
from storelayer.backup.tools import open_private
from storelayer.errors import BackupError

#: Suffix of artifact files; retention only looks at these.
ARTIFACT_SUFFIX = ".storelayer"
#: Suffix of a file still being written.
PARTIAL_SUFFIX = ".partial"
#: The most a manifest may weigh: guards against reading a huge member as JSON.
MAX_MANIFEST_BYTES = 16 << 20


def _member(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o600
    return info


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def partial_name(path: Path) -> Path:
    """The hidden temporary name ``path`` is written under, naming its owner process
    (:func:`~storelayer.backup.children.remove_stale` removes it once that is dead)."""
    return path.with_name(f"{scratch_prefix()}{secrets.token_hex(4)}-{path.name}{PARTIAL_SUFFIX}")


def write_artifact(path: Path, manifest: BackupManifest, payload: Path) -> None:
    """Write the artifact atomically: temporary name, fsync, rename, fsync directory."""
    if path.exists():
        raise BackupError(f"{path} already exists: choose another name or remove it")
    partial = partial_name(path)
    mtime = manifest.created.timestamp()
    raw = manifest.to_json()
    try:
        with open_private(partial) as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_member(MANIFEST_NAME, len(raw), mtime), io.BytesIO(raw))
                with open(payload, "rb") as stored:
                    info = _member(manifest.payload.name, payload.stat().st_size, mtime)
                    tar.addfile(info, stored)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync_directory(path.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist") from None
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"{path} is not a storelayer backup artifact: {error}") from None


def read_manifest(path: Path) -> BackupManifest:
    """The manifest of the artifact at ``path``, checked for format and version."""
    with _open(path) as tar:
        try:
            first = tar.next()
        except tarfile.TarError as error:
            raise BackupError(f"{path} is damaged: {error}") from None
        if first is None or first.name != MANIFEST_NAME or not first.isfile():
            raise BackupError(f"{path} is not a storelayer backup artifact (no {MANIFEST_NAME})")
        if first.size > MAX_MANIFEST_BYTES:
            raise BackupError(f"{path}: the manifest is implausibly large")
        stream = tar.extractfile(first)
        assert stream is not None
        return BackupManifest.from_json(stream.read())


@contextmanager
def payload_stream(path: Path, manifest: BackupManifest) -> Iterator[IO[bytes]]:
    """The payload member of the artifact as a stream, once its size in the archive is
    the manifest's; reading errors of a truncated archive are a ``BackupError``."""
    with _open(path) as tar:
        try:
            member = tar.getmember(manifest.payload.name)
            stream = tar.extractfile(member)
        except KeyError:
            stream = None
        except tarfile.TarError as error:
            raise BackupError(f"{path} is truncated or damaged: {error}") from None
        if stream is None:
            raise BackupError(f"{path} lacks its payload {manifest.payload.name!r}")
        if member.size != manifest.payload.size:
            raise BackupError(
                f"{path} is damaged: its payload holds {member.size} bytes, the manifest "
                f"says {manifest.payload.size}; nothing was unpacked"
            )
        try:
            yield stream
        except (tarfile.TarError, OSError) as error:
            raise BackupError(f"{path} is truncated or damaged: {error}") from None


def check_stored(path: Path, manifest: BackupManifest, stored: Digest) -> None:
    """The payload read from the artifact is the one the manifest describes: a truncated
    or altered artifact is refused."""
    if stored.size != manifest.payload.size:
        raise BackupError(
            f"{path} is truncated or damaged: payload has {stored.size} bytes, the manifest "
            f"says {manifest.payload.size}"
        )
    if stored.sha256 != manifest.payload.sha256:
        raise BackupError(
            f"{path} is damaged: the payload's SHA-256 does not match the manifest (the file "
            "was altered or corrupted after it was written)"
        )


def check_payload(path: Path, manifest: BackupManifest) -> None:
    """Read the payload through, checking its size and SHA-256; nothing is written."""
    with payload_stream(path, manifest) as stream:
        tap = Tap(stream)
        while tap.read(CHUNK):
            pass
    check_stored(path, manifest, tap.digest)
