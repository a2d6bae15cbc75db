"""Shared fixtures of storelayer's own tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from storelayer import PluginManager

FAKE_PLUGINS = Path(__file__).parent / "fake_plugins"


@pytest.fixture
def fake_plugin_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put tests/fake_plugins on sys.path so entry points can name its modules."""
    monkeypatch.syspath_prepend(str(FAKE_PLUGINS))
    return FAKE_PLUGINS


@pytest.fixture
def make_manager() -> Callable[..., PluginManager]:
    """Build a PluginManager over chosen entry points and environment."""

    def make(
        entry_points: Iterable[metadata.EntryPoint] = (),
        environ: dict[str, str] | None = None,
        installed: bool = False,
    ) -> PluginManager:
        extra = list(entry_points)

        def source() -> list[metadata.EntryPoint]:
            found = list(metadata.entry_points(group="storelayer")) if installed else []
            return found + extra

        return PluginManager(entry_points=source, environ=environ or {})

    return make


@pytest.fixture(autouse=True)
def _no_stray_modules() -> Iterable[None]:
    """Fake plugin modules imported by one test are not left for the next."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name in {"lite_backend", "faulty"}:
            del sys.modules[name]


#: Test modules that start a throwaway server once (module fixture): under ``-n`` all
#: their tests go to one worker. (``xdist_group`` would say it, but pytest-xdist 3.8
#: cannot regroup nodes under pytest 9.)
ONE_WORKER_MODULES = frozenset(
    {
        "tests/resilience/test_resilience_postgresql.py",
        "tests/resilience/test_resilience_mariadb.py",
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
