"""Child processes and secrets that cannot outlive storelayer.

A client tool runs in its own process group with a death signal (``PR_SET_PDEATHSIG``
on Linux) and a watchdog: when storelayer is killed, even by SIGKILL, the kernel kills
the tool and the watchdog (which sees its pipe from storelayer close) kills the tool's
whole group, processes the tool started included. The watchdog runs before the tool
starts, and the tool's process sends it its group before it runs the tool's program, so
no moment exists at which the tool runs unwatched. When storelayer stops on an
exception (Ctrl-C, SIGTERM) the group is killed before the exception goes on.

A credential file for a tool is an anonymous in-memory file (``memfd``) the child
reads as ``/dev/fd/N``: it never has a name on disk and is gone with the last process
holding it. Scratch names carry the owner's process id, so
leftovers of a killed run are recognised and removed by the next one.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

_PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the stop flag while a tool runs.
WAKE_SECONDS = 0.2
#: The watchdog's program: read the group's id up to end of file, then kill the group
#: (none if the tool's process never got to send it).
GUARD = (
    "import os, signal\n"
    "group = b''\n"
    "while chunk := os.read(0, 64):\n    group += chunk\n"
    "try:\n    os.killpg(int(group), signal.SIGKILL)\n"
    "except (OSError, ValueError):\n    pass\n"
)
#: ``.storelayer-<pid>-<unix time>-<random>``: a scratch directory and its owner.
SCRATCH_PREFIX = ".storelayer-"
_OWNED = re.compile(r"^\.storelayer-(?P<pid>\d+)-\d+-")


#: ``prctl``, looked up once here: the child between fork and exec must not load
#: anything (another thread may have held the loader's lock at the fork).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent(parent: int, guard: int) -> None:
    """In the child, before exec: ask for SIGKILL when the parent dies, then tell the
    watchdog (pipe ``guard``) the child's group, which is its process id."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    os.write(guard, b"%d" % os.getpid())


def _guard() -> tuple[subprocess.Popen[bytes], int]:
    """A watchdog that kills the process group whose id it reads on its stdin once that
    reaches end of file, and the pipe's write end, which only this process holds
    (copies in children are closed at exec): closed when this process is done with
    the tool, or dies."""
    read_end, write_end = os.pipe()
    try:
        guard = subprocess.Popen(
            [sys.executable, "-S", "-I", "-c", GUARD],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not stop it first
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return guard, write_end


@contextmanager
def running(
    args: Sequence[str], env: dict[str, str], keep_fds: Sequence[int] = (), **streams: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a tool in its own process group that cannot outlive this process: the tool
    has a death signal, a watchdog kills its whole group when this process dies, and
    the group is killed if anything interrupts the block. Whatever the tool started
    and left running is killed when the block ends."""
    parent = os.getpid()
    guard, report = _guard()
    process: subprocess.Popen[bytes] | None = None
    try:  # a signal may arrive while the tool starts: the watchdog knows its group
        process = subprocess.Popen(
            list(args),
            env=env,
            pass_fds=tuple(keep_fds),
            start_new_session=True,
            preexec_fn=lambda: _die_with_parent(parent, report),
            **streams,
        )
        yield process
    except BaseException:
        if process is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        if process is not None:
            process.wait()
        os.close(report)  # the watchdog kills what is left of the group
        guard.wait()


class SecretFile(NamedTuple):
    """A credential file for a child: the path it opens and the descriptors it needs."""

    path: str
    keep_fds: tuple[int, ...]


@contextmanager
def secret_file(name: str, text: str) -> Iterator[SecretFile]:
    """A 0600 file holding ``text`` that never rests on disk: an anonymous memory file
    where the system has one, else a file in a private directory removed afterwards."""
    if hasattr(os, "memfd_create") and Path("/dev/fd").is_dir():
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode())
            yield SecretFile(f"/dev/fd/{fd}", (fd,))
        finally:
            os.close(fd)
        return
    with private_directory() as directory:  # pragma: no cover - no memfd
        path = directory / name
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        yield SecretFile(str(path), ())


def scratch_prefix() -> str:
    """The name prefix of this process's scratch files and directories."""
    return f"{SCRATCH_PREFIX}{os.getpid()}-{int(time.time())}-"


def owner_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not yet waited
    for, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def remove_stale(parent: Path | None = None) -> list[Path]:
    """Remove the scratch directories and files in ``parent`` (default: the temporary
    directory) whose owning process is dead; return what was removed."""
    directory = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        found = _OWNED.match(entry.name)
        if found is None or owner_alive(int(found["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextmanager
def private_directory(parent: Path | None = None) -> Iterator[Path]:
    """A 0700 scratch directory named after this process, removed with everything in
    it afterwards."""
    path = Path(tempfile.mkdtemp(prefix=scratch_prefix(), dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


#: Signals that stop storelayer: the main thread alone takes them.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM} | (
    {signal.SIGHUP} if hasattr(signal, "SIGHUP") else set()
)


def block_stop_signals() -> None:
    """In a helper thread: leave the stop signals to the main thread. The kernel hands a
    process's signal to any thread that does not block it; blocked in every helper,
    SIGINT and SIGTERM reach the main thread at once, which stops the work."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


#: Set when a stop signal arrived under :func:`sigterm_as_interrupt`. Python raises a
#: handler's exception in whatever code the main thread runs, and a finalizer running
#: then (a connection's ``__del__``, a weakref callback) reports it and goes on: the
#: interrupt is lost. A step that cannot be undone asks :func:`raise_if_stopped` first.
_STOPPED = threading.Event()


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    _STOPPED.set()
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def raise_if_stopped() -> None:
    """Raise ``KeyboardInterrupt`` if a stop signal arrived in this block, even if the
    interrupt it raised was swallowed (before a restore is switched in)."""
    if _STOPPED.is_set():
        raise KeyboardInterrupt("stopped by a signal")


def waited(process: subprocess.Popen[bytes]) -> int:
    """``process.wait()`` that a stop signal ends even when its interrupt was swallowed
    (:data:`_STOPPED`): a tool that never exits must not hold storelayer."""
    while True:
        try:
            return process.wait(timeout=WAKE_SECONDS)
        except subprocess.TimeoutExpired:
            raise_if_stopped()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM (and SIGHUP) like Ctrl-C while the block runs, so every cleanup
    runs, and remember any of them and Ctrl-C (:func:`raise_if_stopped`); only in the
    main thread, where Python handles signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STOPPED.clear()
    previous = {s: signal.signal(s, _interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
