"""Shared fixtures of storelayer's own tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

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
