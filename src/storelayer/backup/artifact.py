"""The artifact file: an uncompressed tar archive holding ``manifest.json`` first, then
the payload. Written under a temporary name, fsynced, then renamed, so an interrupted
backup never leaves a file that looks valid; created 0600."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tarfile
from pathlib import Path

from storelayer.backup.children import scratch_prefix
from storelayer.backup.manifest import MANIFEST_NAME, BackupManifest
from storelayer.backup.payload import CHUNK
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


def extract_payload(path: Path, manifest: BackupManifest, target: Path) -> None:
    """Copy the payload into the new 0600 file ``target``, checking its size and
    SHA-256 against the manifest: a truncated or altered artifact is refused here."""
    digest, size = hashlib.sha256(), 0
    with _open(path) as tar:
        try:
            member = tar.getmember(manifest.payload.name)
            stream = tar.extractfile(member)
            if stream is None:
                raise KeyError(manifest.payload.name)
            if member.size != manifest.payload.size:
                raise BackupError(
                    f"{path} is damaged: its payload holds {member.size} bytes, the manifest "
                    f"says {manifest.payload.size}; nothing was unpacked"
                )
            with open_private(target) as out:
                for chunk in iter(lambda: stream.read(CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except KeyError:
            raise BackupError(f"{path} lacks its payload {manifest.payload.name!r}") from None
        except (tarfile.TarError, OSError) as error:
            raise BackupError(f"{path} is truncated or damaged: {error}") from None
    if size != manifest.payload.size:
        raise BackupError(
            f"{path} is truncated or damaged: payload has {size} bytes, the manifest says "
            f"{manifest.payload.size}"
        )
    if digest.hexdigest() != manifest.payload.sha256:
        raise BackupError(
            f"{path} is damaged: the payload's SHA-256 does not match the manifest (the file "
            "was altered or corrupted after it was written)"
        )
