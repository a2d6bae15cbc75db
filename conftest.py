"""Loaded for every test path of the repository (tests/ and backends/*/tests/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from storelayer.testing import skip_or_fail

ROOT = Path(__file__).resolve().parent

#: Every Hypothesis test: a fixed seed and no example database under CI (a run there is
#: reproducible and leaves nothing behind), no deadline (a server's round trip varies),
#: function-scoped fixtures allowed (the tests draw examples inside one database).
settings.register_profile(
    "storelayer",
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    **({"database": None} if os.environ.get("CI") else {}),
)
settings.load_profile("storelayer")

#: Test modules that start a throwaway server once (module fixture): under ``-n`` all
#: their tests go to one worker. (``xdist_group`` would say it, but pytest-xdist 3.8
#: cannot regroup nodes under pytest 9.)
ONE_WORKER_MODULES = frozenset(
    {
        "backends/postgresql/tests/test_postgresql_resilience.py",
        "backends/mysql/tests/test_mysql_resilience.py",
        # One real cluster per session each (storelayer.testing.clusters).
        "tests/clusters/test_pgbouncer.py",
        "tests/clusters/test_pg_failover.py",
        "tests/clusters/test_galera.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load``, except that each module of :data:`ONE_WORKER_MODULES` is one
    unit of work."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ServerModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ServerModulesTogether(config, log)


def find_data(relative: str) -> Path | None:
    """``relative`` under ``$STORELAYER_TEST_DATA``, else under the first ``shared/data``
    in the repository root or a directory above it (the checkout and its worktrees sit
    beside ``shared/``), whatever the working directory."""
    if "STORELAYER_TEST_DATA" in os.environ:
        candidates = [Path(os.environ["STORELAYER_TEST_DATA"])]
    else:
        candidates = [parent / "shared" / "data" for parent in (ROOT, *ROOT.parents)]
    return next((d / relative for d in candidates if (d / relative).exists()), None)


@pytest.fixture(scope="session")
def chinook_sample() -> Path:
    """The Chinook SQLite sample, read-only: copy it before writing. Fails, rather than
    skips, when missing under ``CI``."""
    relative = "chinook/Chinook_Sqlite.sqlite"
    found = find_data(relative)
    if found is None:
        skip_or_fail(
            f"the Chinook sample ({relative}) is in neither $STORELAYER_TEST_DATA nor a "
            f"shared/data at or above {ROOT}; point STORELAYER_TEST_DATA at it"
        )
    return found
