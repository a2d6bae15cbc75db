"""Plugin discovery, registration, isolation of broken plugins, allow/block lists."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

import storelayer
from fake_plugins import faulty
from fake_plugins.entry_points import entry_point
from fake_plugins.lite_backend import LiteBackend
from storelayer import BackendNotFound, ConfigurationError, PluginError, PluginManager
from storelayer.backend import on_conflict_upsert
from storelayer.registry import BackendRegistry
from storelayer.testing.suite.fixtures import user_row
from storelayer.testing.suite.models import ConformanceBase, ConformanceUser
from storelayer_sqlite.replication import reader_url

Make = Callable[..., PluginManager]


def test_installed_backends_come_from_three_distributions() -> None:
    infos = {p.name: p for p in PluginManager().plugins()}
    for name in ("sqlite", "postgresql", "mysql"):
        assert infos[name].status == "loaded", infos[name]
        assert infos[name].distribution == f"storelayer-{name}"
        assert infos[name].backends == [name]


def test_third_party_backend_outside_src_is_served(
    make_manager: Make, fake_plugin_path: Path, tmp_path: Path
) -> None:
    manager = make_manager([entry_point("lite", "lite_backend")])
    db = storelayer.connect(f"lite:///{tmp_path}/third.db", plugins=manager)
    assert db.backend.name == "lite"
    assert db.health().healthy
    with db.session() as s:
        assert s.backend is db.backend
    db.dispose()


def test_broken_entry_point_is_reported_not_fatal(
    make_manager: Make, fake_plugin_path: Path
) -> None:
    manager = make_manager(
        [entry_point("ghost", "no_such_module_anywhere"), entry_point("lite", "lite_backend")]
    )
    infos = {p.name: p for p in manager.plugins()}
    assert infos["ghost"].status == "broken"
    assert "ModuleNotFoundError" in (infos["ghost"].error or "")
    assert infos["lite"].status == "loaded"
    assert "lite" in manager.backends()


@pytest.mark.parametrize(
    ("plugin", "fragment"),
    [
        (faulty.Raising(), "broken on purpose"),
        (faulty.RegistersNameless(), "a name is lowercase letters"),
        (faulty.RegistersNotABackend(), "not a storelayer.Backend instance"),
    ],
)
def test_faulty_registration_marks_only_that_plugin_broken(
    make_manager: Make, fake_plugin_path: Path, plugin: object, fragment: str
) -> None:
    manager = make_manager([entry_point("lite", "lite_backend")])
    manager.register(plugin, name="faulty")
    infos = {p.name: p for p in manager.plugins()}
    assert infos["faulty"].status == "broken"
    assert fragment in (infos["faulty"].error or "")
    assert list(manager.backends()) == ["lite"]


def test_duplicate_backend_name_is_a_clear_error() -> None:
    registry = BackendRegistry()
    registry.bind("first")(LiteBackend())
    with pytest.raises(PluginError, match="'lite', which plugin 'first' already registered"):
        registry.bind("second")(LiteBackend())


@pytest.fixture
def lite_twice(make_manager: Make, fake_plugin_path: Path) -> PluginManager:
    class OtherLite(LiteBackend):
        name = "otherlite"

    class Second:
        @storelayer.hookimpl
        def storelayer_register_backends(self, register: BackendRegistry) -> None:
            register(OtherLite())

    manager = make_manager([entry_point("lite", "lite_backend")])
    manager.register(Second(), name="second")
    return manager


def test_two_backends_on_one_scheme_need_a_choice(lite_twice: PluginManager) -> None:
    with pytest.raises(ConfigurationError, match="claimed by several backends.*STORELAYER_BACKEND"):
        lite_twice.resolve("lite")
    assert lite_twice.resolve("lite", backend="otherlite").name == "otherlite"
    assert lite_twice.resolve("lite+pysqlite", backend="lite").name == "lite"


def test_forced_unknown_backend_lists_registered(lite_twice: PluginManager) -> None:
    with pytest.raises(BackendNotFound, match="'nope'.*registered backends: lite, otherlite"):
        lite_twice.resolve("lite", backend="nope")


def test_missing_distribution_names_what_to_install(make_manager: Make) -> None:
    without_mysql = [ep for ep in metadata.entry_points(group="storelayer") if ep.name != "mysql"]
    manager = make_manager(without_mysql)
    with pytest.raises(BackendNotFound) as info:
        storelayer.connect("mysql://root@127.0.0.1/test", plugins=manager)
    assert "storelayer-mysql" in str(info.value)
    assert "storelayer[mysql]" in str(info.value)


def test_unknown_scheme_lists_what_is_served(make_manager: Make) -> None:
    manager = make_manager(installed=True)
    with pytest.raises(BackendNotFound, match="'oracle'.*serve: .*mysql.*postgresql.*sqlite"):
        storelayer.connect("oracle://scott:tiger@db/orcl", plugins=manager)


def test_block_list_disables_a_plugin(make_manager: Make) -> None:
    manager = make_manager(installed=True, environ={"STORELAYER_DISABLE_PLUGINS": "mysql"})
    infos = {p.name: p for p in manager.plugins()}
    assert infos["mysql"].status == "disabled"
    assert "mysql" not in manager.backends()
    with pytest.raises(BackendNotFound, match="plugin 'mysql' is disabled"):
        manager.resolve("mysql")


def test_allow_list_loads_only_named_plugins(make_manager: Make) -> None:
    manager = make_manager(
        installed=True, environ={"STORELAYER_LOAD_PLUGINS": "storelayer-sqlite, postgresql"}
    )
    assert sorted(manager.backends()) == ["postgresql", "sqlite"]


def test_entry_points_load_once(make_manager: Make, fake_plugin_path: Path) -> None:
    calls = []

    def source() -> list[metadata.EntryPoint]:
        calls.append(1)
        return [entry_point("lite", "lite_backend")]

    manager = PluginManager(entry_points=source, environ={})
    assert calls == []  # lazy: nothing loaded at construction
    manager.backends()
    manager.plugins()
    manager.resolve("lite")
    assert calls == [1]


def test_engine_created_hook_sees_every_engine(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    class Recorder:
        @storelayer.hookimpl
        def storelayer_engine_created(
            self, engine: object, backend: storelayer.Backend, role: str
        ) -> None:
            seen.append((backend.name, role))

    manager = PluginManager()
    manager.register(Recorder(), name="recorder")
    path = tmp_path / "x.db"
    storelayer.connect(f"sqlite:///{path}", replicas=[reader_url(path)], plugins=manager).dispose()
    assert seen == [("sqlite", "primary"), ("sqlite", "replica")]


# -- plugins written against the old Backend members -----------------------------------


def test_a_backend_overriding_old_member_names_still_works(tmp_path: Path) -> None:
    calls: list[str] = []
    with pytest.warns(DeprecationWarning, match=r"constraint_name -> errors\.constraint_name"):

        class OldStyle(storelayer.Backend):
            name, schemes, dialect, default_driver = "oldstyle", ("oldstyle",), "sqlite", None
            features = storelayer.Features(upsert=True, server=False)

            def upsert(self, table: Any, rows: Any, conflict: Any, update: Any) -> Any:
                calls.append("upsert")  # reached from the default ops.bulk_upsert
                return on_conflict_upsert(sqlite_insert, table, rows, conflict, update)

            def bulk_upsert(self, *args: Any) -> None:
                calls.append("bulk_upsert")
                super().bulk_upsert(*args)  # the concern's own member

            def constraint_name(self, error: Any) -> str:
                return f"old:{super().constraint_name(error)}"

    class Plugin:
        @storelayer.hookimpl
        def storelayer_register_backends(self, register: BackendRegistry) -> None:
            register(OldStyle())

    manager = PluginManager(load_entry_points=False)
    manager.register(Plugin(), name="oldstyle")
    with storelayer.connect(f"oldstyle:///{tmp_path}/old.db", plugins=manager) as db:
        ConformanceBase.metadata.create_all(db.engine)
        with db.session() as s:
            s.repository(ConformanceUser).upsert_many([user_row(1)], on="username")
        with pytest.raises(storelayer.Conflict) as raised, db.session() as s:
            s.repository(ConformanceUser).create(**user_row(2, username="user00001"))
    assert calls == ["bulk_upsert", "upsert"]
    assert raised.value.constraint == "old:None"


def test_an_old_member_name_reaches_the_concern_with_a_warning() -> None:
    backend = PluginManager().backends()["sqlite"]
    busy = OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
    with pytest.warns(DeprecationWarning, match=r"Backend\.is_transient is now"):
        assert backend.is_transient(busy) is True
