"""Reading ahead: the next batches of a read come from a thread while the caller works
on the current one, so the database's time to produce them (and the driver's wait for
the network, which releases the GIL) overlaps with the caller's work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from storelayer.backup.children import block_stop_signals

T = TypeVar("T")
#: How often a reader waiting on a full queue looks whether the caller gave up.
_POLL_SECONDS = 0.1


class _Reader(threading.Thread, Generic[T]):
    """Puts each item of ``items`` on ``out``, then the end (or its error)."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        super().__init__(name="storelayer-copy-reader", daemon=True)
        self.items = items
        self.out: queue.Queue[tuple[bool, T | BaseException | None]] = queue.Queue(depth)
        self.stopped = threading.Event()

    def _put(self, entry: tuple[bool, T | BaseException | None]) -> bool:
        while not self.stopped.is_set():
            try:
                self.out.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        block_stop_signals()  # the main thread takes SIGINT and SIGTERM: it stops the copy
        try:
            for item in self.items:
                if not self._put((False, item)):
                    return
            self._put((True, None))
        except BaseException as error:
            self._put((True, error))
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()  # the read's cursor, before the caller uses its connection again


@contextmanager
def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """The items of ``items``, read by a thread up to ``depth`` items ahead. When the
    block ends (however it ends) the thread is stopped and waited for: the connection
    it read from is free again."""
    reader: _Reader[T] = _Reader(items, depth)

    def taken() -> Iterator[T]:
        while True:
            done, item = reader.out.get()
            if done:
                if item is not None:
                    raise item  # type: ignore[misc]
                return
            yield item  # type: ignore[misc]

    reader.start()
    try:
        yield taken()
    finally:
        reader.stopped.set()
        reader.join()
