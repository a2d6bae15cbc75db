"""A tool run by :func:`storelayer.backup.children.running` cannot outlive storelayer,
whatever moment storelayer dies at: here at the worst one, just after the tool has
started (and started a process of its own), before ``Popen`` even returned to it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _processes import alive, describe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model")

#: Seconds the killed tool's process group gets to disappear.
SETTLE = 60.0
#: Run ``running`` with a tool that starts ``sleep`` and waits; the process SIGKILLs
#: itself as soon as the tool is up, inside the tool's ``Popen``.
DIES_WHILE_STARTING = """
import os, signal, subprocess, sys, time
from pathlib import Path
from storelayer.backup.children import running

started = Path(sys.argv[1])
real = subprocess.Popen


class DiesAtStart(real):
    def __init__(self, args, *rest, **options):
        super().__init__(args, *rest, **options)
        if args[0] == "sh":
            while not started.read_text().strip():
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)


subprocess.Popen = DiesAtStart
with running(["sh", "-c", f"sleep 600 & echo $! > {started}; wait"], dict(os.environ)):
    pass
"""


def test_a_tool_started_as_storelayer_dies_dies_with_its_children(tmp_path: Path) -> None:
    started = tmp_path / "started"
    started.write_text("")
    script = textwrap.dedent(DIES_WHILE_STARTING)
    done = subprocess.run([sys.executable, "-c", script, str(started)], timeout=600, check=False)
    assert done.returncode == -9
    grandchild = int(started.read_text())
    deadline = time.monotonic() + SETTLE
    while alive(grandchild):
        if time.monotonic() > deadline:
            message = f"outlived storelayer: {describe([grandchild])}"
            os.kill(grandchild, 9)
            raise AssertionError(message)
        time.sleep(0.1)
