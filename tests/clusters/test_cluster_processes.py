"""storelayer.testing.clusters_process: processes stopped by PID, orphans of a dead run
reaped, missing binaries named with the packages to install."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from storelayer.testing.clusters_process import (
    CLUSTER_PREFIX,
    PIDS_FILE,
    ProcessGroups,
    make_cluster_dir,
    reap_orphans,
    require_binaries,
    wait_until,
)
from storelayer.testing.replicas import OWNER_FILE

SLEEP = "import time; time.sleep(600)"


def test_a_process_group_is_stopped_by_its_pid() -> None:
    workdir = make_cluster_dir("unit")
    try:
        processes = ProcessGroups(workdir)
        child = processes.spawn("sleeper", "", [sys.executable, "-c", SLEEP])
        assert (workdir / PIDS_FILE).read_text().split() == [str(child.pid)]
        processes.stop_all()
        assert child.poll() is not None
    finally:
        ProcessGroups(workdir).stop_all()


def test_an_orphaned_cluster_directory_is_reaped() -> None:
    workdir = make_cluster_dir("unit")
    child = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (workdir / PIDS_FILE).write_text(f"{child.pid}\n")
    (workdir / OWNER_FILE).write_text(str(dead.pid))
    reap_orphans()
    assert child.wait(timeout=30) != 0
    assert not workdir.exists()
    assert workdir.name.startswith(CLUSTER_PREFIX)


def test_missing_binaries_name_the_packages() -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install -y pgbouncer"):
        require_binaries("no-such-server-binary-h14")


def test_wait_until_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_until(lambda: False, "the impossible", timeout=0.3)
    assert time.monotonic() - started >= 0.3
