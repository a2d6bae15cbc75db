"""The public surface is deliberate: changing it is a decision, not an accident."""

from __future__ import annotations

import storelayer
import storelayer.repository

PUBLIC = [
    "AsyncDatabase",
    "AsyncRepository",
    "AsyncSession",
    "Backend",
    "BackendNotFound",
    "BackendRegistry",
    "BackupError",
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Database",
    "Features",
    "HealthReport",
    "KeysetPage",
    "NotFound",
    "Page",
    "PluginError",
    "PluginManager",
    "PoolExhausted",
    "QueryError",
    "ReadOnlyDatabase",
    "ReplicaUnavailable",
    "Repository",
    "Session",
    "Settings",
    "StorelayerError",
    "TransientError",
    "__version__",
    "connect",
    "connect_async",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "mask_url",
]


def test_top_level_all_is_sorted_and_locked() -> None:
    assert storelayer.__all__ == sorted(storelayer.__all__)
    assert storelayer.__all__ == PUBLIC


def test_every_exported_name_exists() -> None:
    for name in storelayer.__all__:
        assert hasattr(storelayer, name), name


def test_repository_surface() -> None:
    assert storelayer.repository.__all__ == [
        "LOOKUPS",
        "MAX_PER_PAGE",
        "KeysetPage",
        "Page",
        "Repository",
    ]


def test_errors_share_one_root() -> None:
    for name in storelayer.__all__:
        obj = getattr(storelayer, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, storelayer.StorelayerError), name


def test_conformance_suite_exports_every_test() -> None:
    """A test missing from the suite's __all__ would silently not run for plugin authors."""
    import importlib
    import pkgutil

    import storelayer.testing.suite as suite

    found = set()
    for module in pkgutil.iter_modules(suite.__path__):
        loaded = importlib.import_module(f"{suite.__name__}.{module.name}")
        found |= {name for name in vars(loaded) if name.startswith("test_")}
    assert found
    assert found <= set(suite.__all__)
