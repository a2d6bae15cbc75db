"""A network that silently drops every packet is noticed within seconds (TCP user
timeout and keepalives), not after the kernel's ~15 minutes of retransmissions.

The drop is real: the servers run in a private network namespace whose loopback is
taken down, so packets vanish without an answer. Needs root and ``unshare``/``ip``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _checks import record

from storelayer.testing import skip_or_fail

SCRIPT = Path(__file__).with_name("_silent_network.py")
#: Both backends set a 10 s TCP user timeout; allow for scheduling on a busy machine.
WITHIN_SECONDS = 20.0


def namespaces_available() -> str | None:
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for a private network namespace"
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "needs unshare and ip"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else "unshare -n is not permitted here"


def test_a_silently_dropping_network_is_noticed_within_seconds() -> None:
    reason = namespaces_available()
    if reason:
        skip_or_fail(reason)
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    record("silent network drop", results)
    for name in ("postgresql", "mysql"):
        assert results[name]["failed"], name
        assert results[name]["seconds"] < WITHIN_SECONDS, results[name]
