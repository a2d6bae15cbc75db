"""Lag samplers: every ``sample_interval`` seconds, in the background, ask each replica
how far behind it is, and probe ejected replicas once their cool-off is over. Reads
never wait for a sample; they use the last one (see ``ReplicaRouter``).

``ThreadSampler`` runs one daemon thread per replica (a hung replica delays only its own
samples); ``AsyncSampler`` runs one task per replica on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable

from storelayer._conflicts import one_line
from storelayer.routing._router import ReplicaRouter

#: ``probe(name)``: the replica's lag in seconds (None: unknown); raises when it fails.
Probe = Callable[[str], "float | None"]
AsyncProbe = Callable[[str], Awaitable["float | None"]]


def _record(router: ReplicaRouter, name: str, outcome: float | BaseException | None) -> None:
    if isinstance(outcome, BaseException):
        router.record_failure(name, one_line(outcome))
    else:
        router.record_sample(name, outcome)


_SAMPLERS: weakref.WeakSet[ThreadSampler] = weakref.WeakSet()


def _forked() -> None:
    """In a forked child the parent's sampler threads are gone: start anew on use."""
    for sampler in list(_SAMPLERS):  # a lock a dead thread held would never open
        sampler._running = False
        sampler._lock = threading.Lock()
        sampler.router.reset_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class ThreadSampler:
    """Samples in daemon threads, started on first use and again after a fork."""

    def __init__(self, router: ReplicaRouter, probe: Probe, interval: float) -> None:
        self.router = router
        self.probe = probe
        self.interval = interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = False  # threads do not survive a fork: see _forked()
        self._lock = threading.Lock()
        _SAMPLERS.add(self)

    @property
    def running(self) -> bool:
        """Whether the threads run in this process."""
        return self._running

    def ensure_started(self) -> None:
        """Start the threads unless they run in this process already."""
        if self._running:
            return
        with self._lock:
            if self._running:
                return
            self._stop = threading.Event()
            self._threads = [
                threading.Thread(
                    target=self._run,
                    args=(name, self._stop),
                    name=f"storelayer-sampler-{name}",
                    daemon=True,
                )
                for name in self.router.names
            ]
            for thread in self._threads:
                thread.start()
            self._running = True

    def wait_first(self, timeout: float) -> None:
        """Wait (bounded) until every replica was sampled or probed once."""
        deadline = time.monotonic() + timeout
        while not self.router.has_samples() and time.monotonic() < deadline:
            time.sleep(0.005)

    def sample(self, name: str) -> None:
        """Sample or probe ``name`` once, now."""
        try:
            outcome: float | BaseException | None = self.probe(name)
        except Exception as error:
            outcome = error
        _record(self.router, name, outcome)

    def _run(self, name: str, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.router.should_sample(name):
                self.sample(name)
            stop.wait(self.interval)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the threads (a thread stuck in a query is left to die with the process)."""
        with self._lock:
            self._stop.set()
            threads, self._threads = self._threads, []
            self._running = False
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


class AsyncSampler:
    """Samples in tasks of the running event loop, started on first use."""

    def __init__(self, router: ReplicaRouter, probe: AsyncProbe, interval: float) -> None:
        self.router = router
        self.probe = probe
        self.interval = interval
        self._tasks: list[asyncio.Task[None]] = []

    async def ensure_started(self) -> None:
        """Start the tasks unless they run on this loop already."""
        loop = asyncio.get_running_loop()
        if self._tasks and all(t.get_loop() is loop and not t.done() for t in self._tasks):
            return
        await self.stop()
        self._tasks = [
            loop.create_task(self._run(name), name=f"storelayer-sampler-{name}")
            for name in self.router.names
        ]

    async def wait_first(self, timeout: float) -> None:
        """Wait (bounded) until every replica was sampled or probed once."""
        deadline = time.monotonic() + timeout
        while not self.router.has_samples() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def sample(self, name: str) -> None:
        """Sample or probe ``name`` once, now."""
        try:
            outcome: float | BaseException | None = await self.probe(name)
        except Exception as error:
            outcome = error
        _record(self.router, name, outcome)

    async def _run(self, name: str) -> None:
        while True:
            if self.router.should_sample(name):
                await self.sample(name)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Cancel the tasks of the running loop; forget tasks of a closed loop."""
        tasks, self._tasks = self._tasks, []
        current = asyncio.get_running_loop()
        mine = [t for t in tasks if t.get_loop() is current]
        for task in tasks:
            with contextlib.suppress(RuntimeError):  # the task's loop is closed
                task.cancel()
        for task in mine:
            with contextlib.suppress(asyncio.CancelledError):
                await task
