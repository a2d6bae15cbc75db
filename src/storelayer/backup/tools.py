"""Finding and running the client tools of a backup strategy.

Strategies build their commands as pure ``(args, env)`` pairs (:class:`Command`); the
functions here are the thin layer that runs them. No shell is ever involved, and secrets
travel in the environment or in a 0600 file, never in ``args``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, NamedTuple

from storelayer.backup.children import private_directory, running, waited
from storelayer.errors import BackupError

__all__ = [
    "STDERR_TAIL",
    "TOOLS_PATH_VARIABLE",
    "Command",
    "feeding",
    "find_tool",
    "open_private",
    "open_target",
    "output_lines",
    "private_directory",
    "run",
    "tool_failure",
    "tool_search_path",
    "tool_version",
    "write_private_text",
]

#: Directories searched for client tools instead of ``PATH`` (``os.pathsep``-separated).
TOOLS_PATH_VARIABLE = "STORELAYER_TOOLS_PATH"
#: Characters of a tool's error output kept in an error message.
STDERR_TAIL = 2000


class Command(NamedTuple):
    """A command line and its whole environment; unpacks as ``args, env``."""

    args: list[str]
    env: dict[str, str]


def tool_search_path(environ: Mapping[str, str] | None = None) -> str:
    """Where tools are looked up: ``STORELAYER_TOOLS_PATH``, else ``PATH``."""
    env = os.environ if environ is None else environ
    return env.get(TOOLS_PATH_VARIABLE) or env.get("PATH") or os.defpath


def find_tool(
    names: Sequence[str], install_hint: str, environ: Mapping[str, str] | None = None
) -> Path:
    """The first of ``names`` found on the search path, or a ``BackupError`` that says
    what to install."""
    search = tool_search_path(environ)
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    env = os.environ if environ is None else environ
    where = TOOLS_PATH_VARIABLE if env.get(TOOLS_PATH_VARIABLE) else "PATH"
    raise BackupError(
        f"{' or '.join(names)} not found on {where} ({search or 'empty'}): {install_hint}"
    )


def tool_version(tool: Path) -> str:
    """The first line ``tool --version`` prints."""
    done = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        raise BackupError(f"{tool} --version failed: {done.stderr.strip()[:300]}")
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def open_private(path: Path, mode: str = "xb") -> IO[bytes]:
    """Open a new file created with mode 0600 (never world- or group-readable)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if "x" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def open_target(path: Path) -> IO[bytes]:
    """Open a dump's target for writing: the named pipe storelayer reads the dump
    from (:mod:`storelayer.backup.stream`), or else a new 0600 file."""
    if path.is_fifo():
        return open(path, "wb")
    return open_private(path)


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` to a new 0600 file (passfiles, option files)."""
    with open_private(path) as handle:
        handle.write(text.encode())
    return path


def error_output() -> IO[bytes]:
    """Where a tool's error output goes: an anonymous memory file where the system has
    one, since a failing restore tool may quote the rows it was fed; else an unnamed
    temporary file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("tool-errors", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()  # pragma: no cover - no memfd


def tool_failure(what: str, returncode: int, stderr: bytes, secrets: Sequence[str]) -> BackupError:
    """The error of a tool that exited ``returncode``: the tail of its error output,
    without ``secrets``."""
    message = stderr.decode(errors="replace").strip()[-STDERR_TAIL:]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return BackupError(f"{what} failed (exit status {returncode}): {message or 'no output'}")


def run(
    command: Command,
    what: str,
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
    secrets: Sequence[str] = (),
    keep_fds: Sequence[int] = (),
) -> None:
    """Run ``command``, reading ``stdin`` from a file and writing stdout to a dump's
    target (:func:`open_target`); a non-zero exit is a ``BackupError`` carrying the
    tool's message. The tool dies with storelayer (:mod:`storelayer.backup.children`)."""
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as source,
        open_target(stdout) if stdout else open(os.devnull, "wb") as sink,
        error_output() as errors,
    ):
        with running(*command, keep_fds, stdin=source, stdout=sink, stderr=errors) as process:
            returncode = waited(process)
        errors.seek(0)
        if returncode != 0:
            raise tool_failure(what, returncode, errors.read(), secrets)


@contextmanager
def feeding(
    command: Command, what: str, *, secrets: Sequence[str] = (), keep_fds: Sequence[int] = ()
) -> Iterator[IO[bytes]]:
    """Run ``command`` and yield its stdin to write to. When the block ends, stdin is
    closed and the tool must exit with status 0; an exception in the block kills the
    tool, so what it was fed is never finished (the tool dies with storelayer too)."""
    with error_output() as errors:
        streams: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.DEVNULL,
            "stderr": errors,
        }
        stdin: IO[bytes] | None = None
        try:
            with running(*command, keep_fds, **streams) as process:
                assert process.stdin is not None
                stdin = process.stdin
                try:
                    yield stdin
                    stdin.close()
                except BrokenPipeError:
                    pass  # the tool stopped reading: its exit status and message say why
                returncode = waited(process)
        finally:  # after the tool was killed, if the block failed
            if stdin is not None:
                with suppress(OSError):
                    stdin.close()
        errors.seek(0)
        if returncode != 0:
            raise tool_failure(what, returncode, errors.read(), secrets)


def output_lines(
    command: Command, what: str, secrets: Sequence[str] = (), stdin: Path | None = None
) -> Generator[bytes, None, None]:
    """Run ``command`` (reading ``stdin``, a file or pipe, if given) and yield its
    stdout line by line; raises after the last line when it failed. The tool is killed
    if the reader stops early."""
    with (
        error_output() as errors,
        open(stdin or os.devnull, "rb") as source,
    ):
        streams: dict[str, Any] = {
            "stdin": source,
            "stdout": subprocess.PIPE,
            "stderr": errors,
        }
        with running(*command, **streams) as process:
            assert process.stdout is not None
            yield from process.stdout
            process.stdout.close()
            returncode = waited(process)
        errors.seek(0)
        if returncode != 0:
            raise tool_failure(what, returncode, errors.read(), secrets)
