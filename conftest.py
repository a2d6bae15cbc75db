"""Loaded for every test path of the repository (tests/ and backends/*/tests/)."""

from __future__ import annotations

from typing import Any

import pytest

#: Test modules that start a throwaway server once (module fixture): under ``-n`` all
#: their tests go to one worker. (``xdist_group`` would say it, but pytest-xdist 3.8
#: cannot regroup nodes under pytest 9.)
ONE_WORKER_MODULES = frozenset(
    {
        "backends/postgresql/tests/test_postgresql_resilience.py",
        "backends/mysql/tests/test_mysql_resilience.py",
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
