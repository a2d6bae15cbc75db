"""The dump of an artifact as a stream, for a restore or a verification: no copy of it,
clear or compressed, is written to disk.

A pump thread reads the payload member of the artifact (hashing it), has it decrypted
when it is encrypted (age, in a thread of its own, through an anonymous pipe),
decompresses it, refusing to go past the dump size the manifest declares, hashes the
dump and writes it into anonymous pipes: one the backend's ``restore`` reads as
``/dev/fd/N`` (when there is a restore), one its ``inspect`` reads in another thread
(rows per table). Size, checksums and rows are known only at the end of the stream:
:meth:`Unpacking.checked_rows` waits for that end and compares them with the manifest.
A restore calls it (``BackupOptions.checked_rows``) before it switches the restored
data in (commit, swap, page copy), so a restore is never switched in unchecked.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from storelayer.backend import Backend
from storelayer.backup.artifact import check_stored, payload_stream
from storelayer.backup.children import raise_if_stopped, remove_stale
from storelayer.backup.counts import count_differences
from storelayer.backup.manifest import BackupManifest
from storelayer.backup.options import BackupOptions
from storelayer.backup.payload import CHUNK, capped, decrypt_into, read_identities
from storelayer.backup.stream import Digest, Tap, Worker, close_all
from storelayer.backup.tools import open_private, private_directory
from storelayer.errors import BackupError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Progress


class ToolLeft(BackupError):
    """The restore stopped reading the dump before its end."""


def identities_for(path: Path, manifest: BackupManifest, identity: Path | None) -> list[Any]:
    """The age identities an encrypted artifact needs (none for a clear one)."""
    if not manifest.payload.encryption:
        return []
    if identity is None:
        raise BackupError(
            f"{path} is encrypted ({manifest.payload.encryption}): pass --identity "
            "with the private key of one of its recipients"
        )
    return read_identities(identity)


def _drain(stream: IO[bytes]) -> None:
    while stream.read(CHUNK):
        pass


#: Seconds a failed or stopped restore waits for its stream's threads before it goes on
#: (a thread blocked on a pipe whose other end a killed tool left must not hold the exit).
STOP_SECONDS = 10.0


class Unpacking:
    """The stream of one artifact's dump, once :meth:`start` ran: :attr:`source` for a
    restore (when ``restoring``), :meth:`checked_rows` at its end, :meth:`stop`."""

    def __init__(
        self,
        artifact: Path,
        manifest: BackupManifest,
        backend: Backend,
        identities: tuple[list[Any], Path | None],
        restoring: bool,
    ) -> None:
        self._artifact, self._manifest, self._backend = artifact, manifest, backend
        self._identities, self._label = identities
        self._restoring = restoring
        self._outputs: list[IO[bytes] | None] = []
        self._tool_end: int | None = None
        self._result: dict[str, int] | BaseException | None = None

    @property
    def source(self) -> Path:
        """What the restore reads: the read end of the dump's pipe."""
        assert self._tool_end is not None
        return Path(f"/dev/fd/{self._tool_end}")

    def start(self) -> None:
        """Open the pipes, start the inspector and the pump."""
        if self._restoring:
            self._tool_end, tool_write = os.pipe()
            self._outputs.append(os.fdopen(tool_write, "wb"))
        copy_read, copy_write = os.pipe()
        self._outputs.append(os.fdopen(copy_write, "wb"))
        inspect = self._backend.backups.inspect
        self._inspector: Worker[dict[str, int]] = Worker(
            lambda: inspect(Path(f"/dev/fd/{copy_read}")), lambda: close_all(copy_read)
        )
        self._pump: Worker[Digest] = Worker(self._run, lambda: close_all(*self._open_outputs()))
        self._inspector.start()
        self._pump.start()

    def _open_outputs(self) -> list[IO[bytes]]:
        return [o for o in self._outputs if o is not None]

    def _hand_on(self, chunk: bytes) -> None:
        """Write one chunk of the dump to the restore, then to the inspector; an
        inspector that stopped reading is dropped (its own error tells why)."""
        for index, output in enumerate(self._outputs):
            if output is None:
                continue
            try:
                output.write(chunk)
            except BrokenPipeError:
                self._outputs[index] = None
                close_all(output)
                if self._restoring and index == 0:
                    raise ToolLeft(
                        "the restore stopped reading the dump before its end: nothing was "
                        "switched in"
                    ) from None

    @contextmanager
    def _decrypted(self, stored: IO[bytes]) -> Iterator[IO[bytes]]:
        """``stored``, decrypted in a thread through an anonymous pipe when encrypted."""
        if not self._manifest.payload.encryption:
            yield stored
            return
        read_end, write_end = os.pipe()
        plain, writer = os.fdopen(read_end, "rb"), os.fdopen(write_end, "wb")
        identities, label = self._identities, self._label
        assert label is not None
        decrypter: Worker[None] = Worker(
            lambda: decrypt_into(stored, writer, identities, label), lambda: close_all(writer)
        )
        decrypter.start()
        try:
            yield plain
        except BaseException:
            first = decrypter.error  # failed on its own, before the reader stopped
            close_all(plain)
            decrypter.join()
            if isinstance(first, BackupError):
                raise first from None
            raise
        close_all(plain)
        decrypter.join()
        if decrypter.error is not None:
            raise decrypter.error

    def _run(self) -> Digest:
        """Pump the whole dump, checking the payload on the way; the dump's digest."""
        manifest, digest, size = self._manifest, hashlib.sha256(), 0
        with payload_stream(self._artifact, manifest) as member:
            stored = Tap(member)
            with self._decrypted(cast("IO[bytes]", stored)) as packed:
                for chunk in capped(packed, manifest.payload.compression, manifest.dump.size):
                    digest.update(chunk)
                    size += len(chunk)
                    self._hand_on(chunk)
            _drain(cast("IO[bytes]", stored))
        check_stored(self._artifact, manifest, stored.digest)
        return Digest(size, digest.hexdigest())

    def stop(self, timeout: float | None = None) -> None:
        """Let the pump and the inspector end: the restore no longer reads. With
        ``timeout`` (a failed or stopped restore, whose stream no one needs), wait at most
        that long for each: they are daemon threads, gone with the process."""
        if self._tool_end is not None:
            close_all(self._tool_end)
            self._tool_end = None
        self._pump.join(timeout)
        self._inspector.join(timeout)

    def root_cause(self, failure: BaseException) -> BaseException:
        """What to report when the restore failed with ``failure``: the stream's own
        damage first (a restore fed a damaged dump fails as a consequence)."""
        error = self._pump.error
        if error is not None and not isinstance(error, ToolLeft):
            return error
        return failure

    def checked_rows(self) -> dict[str, int]:
        """Wait for the end of the stream and check it: the payload's and the dump's
        size and SHA-256, and the rows the inspector read, against the manifest. The
        dump's rows per table, or a ``BackupError`` (every call, once it failed); a
        ``KeyboardInterrupt`` once storelayer was told to stop, though the interrupt was
        swallowed on its way (:func:`~storelayer.backup.children.raise_if_stopped`)."""
        raise_if_stopped()
        if self._result is None:
            self.stop()
            try:
                self._result = self._check()
            except BackupError as error:
                self._result = error
        if isinstance(self._result, BaseException):
            raise self._result
        return self._result

    def _check(self) -> dict[str, int]:
        for cause in (self._pump.error, self._inspector.error):
            if cause is not None:
                raise cause
        dump = self._manifest.dump
        if self._pump.result != Digest(dump.size, dump.sha256):
            raise BackupError("the unpacked dump does not match the manifest's SHA-256")
        assert self._inspector.result is not None
        differences = count_differences(self._manifest.tables, self._inspector.result)
        if differences:
            raise BackupError(
                "the dump does not hold the manifest's rows: " + "; ".join(differences)
            )
        return self._inspector.result


@contextmanager
def unpacking(
    artifact: Path,
    manifest: BackupManifest,
    backend: Backend,
    identity: Path | None,
    restoring: bool = True,
) -> Iterator[Unpacking]:
    """The artifact's dump streaming (:class:`Unpacking`); stopped afterwards, and a
    failure inside the block reported by its root cause. Scratch files of dead runs
    are removed first."""
    remove_stale()
    feed = Unpacking(
        artifact,
        manifest,
        backend,
        (identities_for(artifact, manifest, identity), identity),
        restoring,
    )
    feed.start()
    try:
        yield feed
    except BaseException as failure:
        feed.stop(timeout=STOP_SECONDS)
        cause = feed.root_cause(failure)
        if cause is failure:
            raise
        raise cause from None
    feed.stop()


def verified_rows(
    artifact: Path, manifest: BackupManifest, backend: Backend, identity: Path | None
) -> dict[str, int]:
    """Read the whole dump through (decrypted, decompressed, inspected) without
    restoring it, and check it."""
    with unpacking(artifact, manifest, backend, identity, restoring=False) as feed:
        return feed.checked_rows()


@contextmanager
def unpacked_file(artifact: Path, manifest: BackupManifest, backend: Backend) -> Iterator[Path]:
    """The checked dump of a clear (unencrypted) artifact as a 0600 file in a private
    directory, for a restore tool that must seek in it; removed afterwards."""
    assert not manifest.payload.encryption, "an encrypted dump is never written in clear"
    with private_directory() as work, unpacking(artifact, manifest, backend, None) as feed:
        target = work / manifest.dump.name
        with open(feed.source, "rb") as dump, open_private(target) as copy:
            while chunk := dump.read(CHUNK):
                copy.write(chunk)
        feed.checked_rows()
        yield target


def restore_streamed(
    artifact: Path,
    manifest: BackupManifest,
    backend: Backend,
    identity: Path | None,
    target: tuple[Engine, Progress | None],
    options: BackupOptions,
    say: Callable[[str], None],
) -> None:
    """Restore the artifact's dump with the backend's ``restore``, fed from the stream
    and checked before the backend switches it in (and again after it returned). A
    backend whose restore must seek in the dump (``restore_needs_file(options)`` true:
    parallel pg_restore) gets a private file of a clear artifact; an encrypted one is
    never written in clear, so it is restored in one stream instead (``jobs`` 1)."""
    engine, progress = target
    needs_file = getattr(backend.backups, "restore_needs_file", None)
    if needs_file is not None and needs_file(options):
        if not manifest.payload.encryption:
            with unpacked_file(artifact, manifest, backend) as dump:
                backend.backups.restore(engine, dump, progress, options)
            return
        say(
            f"warning: a parallel restore (--jobs {options.jobs}) reads the dump from a "
            "file, and an encrypted backup is never written in clear: restoring in one "
            "stream instead"
        )
        options = replace(options, jobs=1)
    with unpacking(artifact, manifest, backend, identity) as feed:
        fed = replace(options, checked_rows=feed.checked_rows)
        backend.backups.restore(engine, feed.source, progress, fed)
        feed.checked_rows()
