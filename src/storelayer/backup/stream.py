"""The dump as a stream: no copy of it is ever written to disk.

The backend writes its dump into a named pipe (its ``backup`` target). A pump thread
reads the pipe once: every byte is hashed and counted, copied into a second pipe that
the backend's ``inspect`` reads in another thread (the row counts of the manifest), and
passed through compression and encryption into the payload file. So what rests on disk
is the payload only: compressed, and encrypted when recipients were given.

The backend runs in the calling thread, so Ctrl-C and SIGTERM stop its tool as before.
Each pipe end is held open by storelayer until the other side has come and gone, so no
side waits for a partner that failed before it opened its end.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Generic, NamedTuple, TypeVar, cast

from storelayer.backup.children import block_stop_signals
from storelayer.backup.payload import CHUNK, seal

T = TypeVar("T")
#: Seconds between two wake-ups of a reader that may wait for a writer.
WAKE_SECONDS = 0.05
class Digest(NamedTuple):
    """What the pump saw of the dump."""

    size: int
    sha256: str


class Tap(io.RawIOBase):
    """Reads ``source``, hashing and counting every byte and copying it to ``copy``
    (the inspecting reader), if any; a copy whose reader stopped early is dropped, the
    reader's own error tells why."""

    def __init__(self, source: IO[bytes], copy: IO[bytes] | None = None) -> None:
        self._source, self._copy = source, copy
        self._digest, self.size = hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._source.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            view = memoryview(buffer)[:count]
            self._digest.update(view)
            self.size += count
            if self._copy is not None:
                try:
                    self._copy.write(view)
                except BrokenPipeError:
                    self._copy = None
        return int(count or 0)

    @property
    def digest(self) -> Digest:
        return Digest(self.size, self._digest.hexdigest())


class Worker(threading.Thread, Generic[T]):
    """Runs ``work`` and keeps its result or exception; ``then`` runs in any case."""

    def __init__(self, work: Callable[[], T], then: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._work, self._then = work, then
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        block_stop_signals()
        try:
            self.result = self._work()
        except BaseException as error:
            self.error = error
        finally:
            self._then()


def _open_reading(fifo: Path) -> tuple[IO[bytes], int]:
    """The read end of ``fifo`` and a write end held by storelayer (no end of file
    before the writer has come and gone; closing the held end lets it come)."""
    read = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    held = os.open(fifo, os.O_WRONLY)
    os.set_blocking(read, True)
    return os.fdopen(read, "rb", buffering=0), held


def _open_writing(fifo: Path) -> tuple[IO[bytes], int]:
    """The write end of ``fifo`` and a read end held by storelayer (writes do not wait
    for a reader that never comes once the held end is closed)."""
    held = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    write = os.open(fifo, os.O_WRONLY)
    return os.fdopen(write, "wb", buffering=0), held


def close_all(*ends: IO[bytes] | int) -> None:
    for end in ends:
        with suppress(OSError):
            end.close() if not isinstance(end, int) else os.close(end)


def _drain(source: IO[bytes]) -> None:
    """Read ``source`` to its end and close it: a writer never waits on a reader that
    gave up (its own error tells why)."""
    with suppress(OSError):
        while source.read(CHUNK):
            pass
    close_all(source)


def _wake(fifo: Path, reader: threading.Thread) -> None:
    """Until ``reader`` is done: open and close a write end of ``fifo`` now and then,
    so that a reader that opens the pipe after the last writer left still gets what
    is buffered, then the end of the stream, instead of waiting for a writer."""
    while reader.is_alive():
        with suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(WAKE_SECONDS)


@contextmanager
def _pipes(work: Path, name: str) -> Iterator[tuple[Path, Path]]:
    dump, check = work / f"pipe-{name}", work / f"check-{name}"
    os.mkfifo(dump, 0o600)
    os.mkfifo(check, 0o600)
    try:
        yield dump, check
    finally:
        dump.unlink(missing_ok=True)
        check.unlink(missing_ok=True)


class Streamed(NamedTuple):
    """The outcome of :func:`stream_dump`."""

    tool: str | None
    dump: Digest
    tables: dict[str, int]


def stream_dump(
    work: Path,
    name: str,
    payload: Path,
    produce: Callable[[Path], str | None],
    inspect: Callable[[Path], dict[str, int]],
    pack: tuple[str, list[str]],
) -> Streamed:
    """Run ``produce(pipe)`` (the backend's backup) here while the dump it writes is
    inspected and sealed (``pack``: compression, recipients) into ``payload``."""
    with _pipes(work, name) as (dump, check):
        source, source_held = _open_reading(dump)
        copy, copy_held = _open_writing(check)
        inspector = Worker(lambda: inspect(check), lambda: close_all(copy_held))
        tap = Tap(source, copy)

        def done_pumping() -> None:
            close_all(copy)
            _drain(source)

        pump = Worker(lambda: seal(cast("IO[bytes]", tap), payload, *pack), done_pumping)
        inspector.start()
        pump.start()
        failure: BaseException | None = None
        tool = None
        try:
            tool = produce(dump)
        except BaseException as error:
            failure = error
        finally:
            close_all(source_held)
            pump.join()
            _wake(check, inspector)
    for cause in (pump.error, failure, inspector.error):  # the root cause first
        if cause is not None:
            raise cause
    assert inspector.result is not None
    return Streamed(tool, tap.digest, inspector.result)
