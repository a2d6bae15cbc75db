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
    "InvalidValue",
    "KeysetPage",
    "NotFound",
    "Page",
    "PluginError",
    "PluginManager",
    "PoolExhausted",
    "QueryError",
    "ReadOnlyDatabase",
    "ReadOnlySession",
    "ReplicaUnavailable",
    "Repository",
    "RetryPolicy",
    "Session",
    "Settings",
    "StatementTimeout",
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
    """A test missing from the suite's __all__, or shadowed by a namesake in another
    module, would silently not run for plugin authors."""
    import importlib
    import pkgutil

    import storelayer.testing.suite as suite

    found = {}
    for module in pkgutil.iter_modules(suite.__path__):
        loaded = importlib.import_module(f"{suite.__name__}.{module.name}")
        tests = {name: test for name, test in vars(loaded).items() if name.startswith("test_")}
        assert not tests.keys() & found.keys(), module.name
        found |= tests
    assert len(found) > 90
    assert suite.__all__ == ["conformance_tables", *sorted(found)]
    assert all(getattr(suite, name) is test for name, test in found.items())
