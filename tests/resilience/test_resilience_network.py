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

import storelayer_mysql.connection
import storelayer_postgresql.backend
from storelayer.config import DEFAULT_CONNECT_TIMEOUT
from storelayer.testing import skip_or_fail

SCRIPT = Path(__file__).with_name("_silent_network.py")
#: The TCP user timeout each backend sets, in seconds.
USER_TIMEOUT = {
    "postgresql": storelayer_postgresql.backend.TCP_USER_TIMEOUT_MS / 1000,
    "mysql": storelayer_mysql.connection.TCP_USER_TIMEOUT_MS / 1000,
}


def timers(backend: str, path: str) -> float:
    """The timeouts a unit on ``path`` (``_silent_network.PATHS``) waits out in turn."""
    user_timeout = USER_TIMEOUT[backend]
    return user_timeout if path == "busy" else user_timeout + DEFAULT_CONNECT_TIMEOUT


def margin(baseline: float) -> float:
    """What scheduling may add to the timers: 2 s on an idle machine (measured: 0.5 s),
    more when a healthy unit (``baseline``, measured in the same run) was slow."""
    return max(2.0, 20 * baseline)


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
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    allowance = margin(measured["baseline"])
    record("silent network drop", {**measured, "margin": allowance})
    for backend in ("postgresql", "mysql"):
        for path in ("busy", "idle"):
            unit = measured["units"][f"{backend} {path}"]
            waited = timers(backend, path)
            assert unit["failed"], (backend, path)
            # not sooner (else the path was not the one meant), and within the margin
            assert waited - 0.5 <= unit["seconds"] < waited + allowance, (backend, path, unit)
