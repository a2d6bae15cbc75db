"""storelayer.testing.replicas: missing binaries skip, or fail under CI; a backend
without a replication fixture skips."""

from __future__ import annotations

from typing import Any

import pytest

from storelayer import Backend
from storelayer.testing import start_replicas


class NoBinaries(Backend):
    name = "nobinaries"

    def start_test_replicas(self, count: int = 1) -> Any:
        raise FileNotFoundError("server binaries (initdb) not found; set PG_BINDIR")


class Started(Backend):
    name = "started"

    def __init__(self) -> None:
        self.events: list[str] = []

    def start_test_replicas(self, count: int = 1) -> Any:
        events = self.events

        class Cluster:
            def __enter__(self) -> Cluster:
                events.append(f"start {count}")
                return self

            def __exit__(self, *exc_info: object) -> None:
                events.append("stop")

        return Cluster()


def test_missing_binaries_skip_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="binaries"), start_replicas(NoBinaries()):
        pass


def test_missing_binaries_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"), start_replicas(NoBinaries()):
        pass


def test_a_backend_without_replication_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    plain = Backend()
    with pytest.raises(pytest.skip.Exception, match="offers no replication"), start_replicas(plain):
        pass


def test_the_cluster_is_torn_down_even_when_the_test_fails() -> None:
    backend = Started()
    with pytest.raises(RuntimeError), start_replicas(backend, 2):
        raise RuntimeError("test body failed")
    assert backend.events == ["start 2", "stop"]


def test_sets_whose_owner_died_are_found_for_reaping() -> None:
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from storelayer.testing.replicas import claim_workdir, orphaned_workdirs

    prefix = f"storelayer-test-orphans-{os.getpid()}-"
    mine = Path(tempfile.mkdtemp(prefix=prefix))
    dead = Path(tempfile.mkdtemp(prefix=prefix))
    unowned = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        claim_workdir(mine)
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        (dead / "owner.pid").write_text(child.stdout.strip())
        assert orphaned_workdirs(prefix) == [dead]
    finally:
        for path in (mine, dead, unowned):
            shutil.rmtree(path, ignore_errors=True)
