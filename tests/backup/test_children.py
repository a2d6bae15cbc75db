"""A tool run by :func:`storelayer.backup.children.running` cannot outlive storelayer,
whatever moment storelayer dies at: here at the worst one, just after the tool has
started (and started a process of its own), before ``Popen`` even returned to it."""

from __future__ import annotations

import os
import signal
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
#: Run ``running`` with a tool that starts ``sleep`` and waits; the process sends itself
#: signal ``argv[2]`` (SIGTERM handled as storelayer's commands do) as soon as the tool
#: is up, inside the tool's ``Popen``.
DIES_WHILE_STARTING = """
import os, signal, subprocess, sys, time
from pathlib import Path
from storelayer.backup.children import running, sigterm_as_interrupt

started, signum = Path(sys.argv[1]), int(sys.argv[2])
real = subprocess.Popen


class DiesAtStart(real):
    def __init__(self, args, *rest, **options):
        super().__init__(args, *rest, **options)
        if args[0] == "sh":
            while not started.read_text().strip():
                time.sleep(0.01)
            os.kill(os.getpid(), signum)


subprocess.Popen = DiesAtStart
tool = ["sh", "-c", f"sleep 600 & echo $! > {started}; wait"]
with sigterm_as_interrupt(), running(tool, dict(os.environ)):
    pass
"""


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, -signal.SIGINT)],
    ids=["KILL", "TERM"],
)
def test_a_tool_started_as_storelayer_dies_dies_with_its_children(
    tmp_path: Path, signum: int, status: int
) -> None:
    started = tmp_path / "started"
    started.write_text("")
    script = [sys.executable, "-c", textwrap.dedent(DIES_WHILE_STARTING), str(started), str(signum)]
    with (tmp_path / "output").open("w+b") as output:  # not a pipe: the tool holds it
        done = subprocess.run(script, timeout=600, check=False, stdout=output, stderr=output)
        output.seek(0)
        assert done.returncode == status, output.read()
    grandchild = int(started.read_text())
    deadline = time.monotonic() + SETTLE
    while alive(grandchild):
        if time.monotonic() > deadline:
            message = f"outlived storelayer: {describe([grandchild])}"
            os.kill(grandchild, 9)
            raise AssertionError(message)
        time.sleep(0.1)



#: A SIGTERM whose interrupt Python raises inside a finalizer, which swallows it (it is
#: only reported), as a pooled connection's ``__del__`` may; then ``argv[1]``: the step
#: before a restore's switch, or waiting for a tool that never exits.
SWALLOWED = """
import os, signal, sys
from storelayer.backup.children import raise_if_stopped, running, sigterm_as_interrupt, waited


class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # Python runs the handler here, inside the finalizer
            pass


with sigterm_as_interrupt():
    Finalized()
    print("went on", flush=True)
    if sys.argv[1] == "switch":
        raise_if_stopped()
    else:
        with running(["sleep", "600"], dict(os.environ)) as tool:
            waited(tool)
    print("done", flush=True)
"""


@pytest.mark.parametrize("step", ["switch", "tool"])
def test_a_stop_signal_swallowed_by_a_finalizer_still_stops_storelayer(step: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SWALLOWED, step], capture_output=True, timeout=600, check=False
    )
    assert b"Exception ignored" in done.stderr  # the interrupt itself was lost
    assert done.stdout == b"went on\n"
    assert done.returncode == -signal.SIGINT, done.stderr
