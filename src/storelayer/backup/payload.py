"""The payload of an artifact: the native dump, compressed (zstd or gzip), then
optionally encrypted to age recipients. Only the recipients' public keys are needed to
write it; the identity (private key) is needed to read it back."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from storelayer.backup.tools import open_private
from storelayer.errors import BackupError

#: Compression methods and the suffix each adds to the payload's name.
COMPRESSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
#: The encryption method and its suffix.
AGE, AGE_SUFFIX = "age", ".age"
ZSTD_LEVEL = 6
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checked_compression(method: str) -> str:
    """``method`` if storelayer knows it, else a ``BackupError`` listing the choices."""
    if method not in COMPRESSIONS:
        raise BackupError(f"unknown compression {method!r}: choose {', '.join(COMPRESSIONS)}")
    return method


class _GzipReader(io.RawIOBase):
    """The gzip stream of ``source`` (mtime 0, so equal dumps give equal payloads),
    read as it is compressed."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip header
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            chunk = self._source.read(CHUNK)
            if chunk:
                self._pending = self._packer.compress(chunk)
            else:
                self._pending, self._done = self._packer.flush(), True
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def compressing(source: IO[bytes], method: str) -> IO[bytes]:
    """``source`` compressed with ``method``, as a stream read on demand."""
    if method == "zstd":
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        return cast("IO[bytes]", compressor.stream_reader(source, read_size=CHUNK))
    if method == "gzip":
        return cast("IO[bytes]", io.BufferedReader(_GzipReader(source), CHUNK))
    return source


def seal(source: IO[bytes], target: Path, method: str, recipients: Sequence[str]) -> None:
    """Write the stream ``source`` compressed with ``method`` and, with
    ``recipients``, encrypted to them, into the new 0600 file ``target``; nothing else
    is written."""
    parsed = parse_recipients(recipients) if recipients else []
    with open_private(target) as sealed:
        packed = compressing(source, method)
        if parsed:
            _pyrage().encrypt_io(packed, sealed, parsed)
        else:
            shutil.copyfileobj(packed, sealed, CHUNK)


def decompressing(packed: IO[bytes], method: str) -> IO[bytes]:
    """``packed`` decompressed with ``method``, as a stream read on demand."""
    if method == "zstd":
        reader: Any = zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True)
        return cast("IO[bytes]", reader)
    if method == "gzip":
        return cast("IO[bytes]", gzip.GzipFile(fileobj=packed, mode="rb"))
    return packed


def capped(packed: IO[bytes], method: str, limit: int) -> Iterator[bytes]:
    """The chunks of ``packed`` decompressed with ``method``; damaged input, or output
    beyond ``limit`` bytes (the size the manifest declares), is a ``BackupError`` raised
    before a byte past ``limit`` is handed on."""
    written = 0
    try:
        stream = decompressing(packed, method)
        while chunk := stream.read(min(CHUNK, limit - written + 1)):
            written += len(chunk)
            if written > limit:
                raise BackupError(
                    f"the backup expands beyond the {limit} bytes its manifest declares: "
                    "refused as damaged or crafted"
                )
            yield chunk
    except (zstandard.ZstdError, OSError, EOFError, gzip.BadGzipFile) as error:
        raise BackupError(f"cannot decompress the backup ({method}): {error}") from None


def decompress(source: Path, target: Path, method: str, limit: int) -> None:
    """Undo :func:`compressing` into the new 0600 file ``target``, within ``limit``
    bytes (:func:`capped`)."""
    with open(source, "rb") as packed, open_private(target) as plain:
        for chunk in capped(packed, method, limit):
            plain.write(chunk)


def _pyrage() -> Any:
    try:
        import pyrage  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise BackupError(
            "encrypted backups need pyrage: pip install 'storelayer[backup]'"
        ) from None
    return pyrage


def parse_recipients(recipients: Sequence[str]) -> list[Any]:
    """age recipients (``age1...``) as pyrage objects; a bad one is a ``BackupError``."""
    pyrage = _pyrage()
    parsed = []
    for text in recipients:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(text.strip()))
        except pyrage.RecipientError as error:
            raise BackupError(f"{text.strip()!r} is not an age recipient: {error}") from None
    return parsed


def read_identities(path: Path) -> list[Any]:
    """The age identities (``AGE-SECRET-KEY-1...`` lines) of an identity file."""
    pyrage = _pyrage()
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise BackupError(f"cannot read the identity file {path}: {error}") from None
    keys = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if not keys:
        raise BackupError(f"{path} holds no age identity (AGE-SECRET-KEY-1... line)")
    try:
        return [pyrage.x25519.Identity.from_str(key) for key in keys]
    except pyrage.IdentityError as error:
        raise BackupError(f"{path} holds an invalid age identity: {error}") from None


def decrypt_into(sealed: IO[bytes], plain: IO[bytes], identities: list[Any], label: Path) -> None:
    """Decrypt the stream ``sealed`` with ``identities`` (read from ``label``) into the
    stream ``plain``: a pipe, so nothing of the clear dump rests on disk."""
    pyrage = _pyrage()
    try:
        pyrage.decrypt_io(sealed, plain, identities)
    except pyrage.DecryptError as error:
        raise BackupError(
            f"cannot decrypt the backup with {label}: {error} (is it the identity matching "
            "one of the manifest's recipients?)"
        ) from None
