"""A storelayer command line run as its own process, to be killed at a chosen point.

Two kinds of points. A client tool (on ``STORELAYER_TOOLS_PATH`` a wrapper around the
real one records its process id, and the one whose arguments contain
``$KILL_TEST_HANG`` starts a grandchild and waits instead of working). Or a function of
storelayer's own (``KILL_TEST_POINT=module:attribute[.attribute]`` and
``KILL_TEST_CALL=N``): its N-th call waits, in whatever thread runs it, until the
process is killed or ``$KILL_TEST_RELEASE`` exists. Either way ``$KILL_TEST_READY`` is
created when the point is reached, and every process below storelayer at that moment
is recorded, so that the test can tell none survives.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from _processes import alive, descendants, describe
from sqlalchemy.engine import URL

from storelayer.backup import TOOLS_PATH_VARIABLE

#: The client tools wrapped, by backend.
TOOLS = {
    "postgresql": ["pg_dump", "pg_restore", "psql"],
    "mysql": ["mariadb-dump", "mysqldump", "mariadb", "mysql"],
    "sqlite": [],
}
WRAPPER = """#!/bin/sh
[ "$1" = "--version" ] && exec {real} "$@"
echo $$ >> "$KILL_TEST_PIDS"
case " $* " in *"$KILL_TEST_HANG"*)
    if [ -n "$KILL_TEST_HANG" ]; then
        sleep 600 & echo $! >> "$KILL_TEST_PIDS"; : > "$KILL_TEST_READY"; wait; exit 1
    fi;;
esac
exec {real} "$@"
"""
#: Runs the storelayer command with one function made to wait (see the module's doc).
PRELUDE = """
import importlib, os, sys, time
from pathlib import Path

point = os.environ.get("KILL_TEST_POINT")
if point:
    module_name, _, path = point.partition(":")
    *owners, name = path.split(".")
    owner = importlib.import_module(module_name)
    for attribute in owners:
        owner = getattr(owner, attribute)
    original, calls = getattr(owner, name), [0]

    def waiting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(os.environ.get("KILL_TEST_CALL", "1")):
            Path(os.environ["KILL_TEST_READY"]).touch()
            while not Path(os.environ["KILL_TEST_RELEASE"]).exists():
                time.sleep(0.05)
        return original(*args, **kwargs)

    setattr(owner, name, waiting)
sys.argv[0] = "storelayer"
from storelayer.cli import main
main()
"""
#: Seconds a killed process and its children get to disappear.
SETTLE = 60.0


def wait_for(check: Callable[[], bool], what: str, explain: Callable[[], str] = str) -> None:
    """Poll ``check`` until it holds, or fail after :data:`SETTLE` seconds."""
    deadline = time.monotonic() + SETTLE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {explain()}")
        time.sleep(0.1)


def files_holding(needle: str, *roots: Path) -> list[Path]:
    """Files under ``roots`` whose bytes contain ``needle``."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


class Harness:
    """Runs ``storelayer --url URL ...`` with wrapped tools and its own temp directory."""

    def __init__(self, root: Path, backend_name: str, url: URL, secret: str) -> None:
        self.root, self.url, self.secret = root, url, secret
        self.tools, self.tmp = root / "tools", root / "tmp"
        self.pids, self.ready = root / "pids", root / "ready"
        self.release = root / "release"
        self.tools.mkdir()
        self.tmp.mkdir()
        self.below: list[int] = []
        #: stdout and stderr of the process last killed.
        self.killed_output = (b"", b"")
        for name in TOOLS[backend_name]:
            real = shutil.which(name)
            if real:
                wrapper = self.tools / name
                wrapper.write_text(WRAPPER.format(real=real))
                wrapper.chmod(0o755)

    def start(
        self, *args: str, hang: str = "", point: str = "", call: int = 1
    ) -> subprocess.Popen[bytes]:
        """Start the command; it waits at the tool marked ``hang`` or at ``point``."""
        self.pids.write_text("")
        self.ready.unlink(missing_ok=True)
        self.release.unlink(missing_ok=True)
        env = {
            **os.environ,
            TOOLS_PATH_VARIABLE: str(self.tools),
            "TMPDIR": str(self.tmp),
            "KILL_TEST_PIDS": str(self.pids),
            "KILL_TEST_READY": str(self.ready),
            "KILL_TEST_RELEASE": str(self.release),
            "KILL_TEST_HANG": hang,
            "KILL_TEST_POINT": point,
            "KILL_TEST_CALL": str(call),
        }
        env.pop("DATABASE_URL", None)
        url = self.url.render_as_string(hide_password=False)
        command = [sys.executable, "-c", PRELUDE, "--url", url, *args]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run the command to its end."""
        process = self.start(*args)
        out, err = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def kill_when_ready(
        self,
        process: subprocess.Popen[bytes],
        signum: int,
        at_point: Callable[[], None] = lambda: None,
    ) -> int:
        """Once the point is reached, run ``at_point`` (checks of what the paused
        process has on disk) and send ``signum`` (then let a waiting function go on, as
        a thread of a live process would); return the exit status."""
        wait_for(lambda: self.ready.exists() or process.poll() is not None, "the point")
        assert process.poll() is None, process.communicate()
        at_point()
        self.below = descendants(process.pid)[1:]
        process.send_signal(signum)
        self.release.touch()
        self.killed_output = process.communicate(timeout=SETTLE)
        return process.returncode

    def assert_nothing_left(self, *roots: Path) -> None:
        """No process that ran below storelayer survives, no file holds the secret."""
        pids = self.below + [int(p) for p in self.pids.read_text().split()]
        survivors = partial(describe, pids)
        wait_for(lambda: not any(alive(p) for p in pids), "the tools to die", survivors)
        if self.secret:
            assert files_holding(self.secret, self.tmp, *roots) == []


def kill_signal(name: str) -> int:
    """``signal.SIGKILL`` for ``"KILL"``..."""
    return int(getattr(signal, f"SIG{name}"))
