"""The copy matrix: every direction between the backends under test (6 with SQLite,
PostgreSQL and MariaDB) x three datasets (the reference schema, Chinook, a table of
every portable type), against the real servers. Each copy ends with equal row counts
and checksums (recomputed here, not taken from the report) and a target whose schema
is the application's: ``migrate check`` clean for the reference schema, no difference
from the models for the all-types tables, the same shape as the source for Chinook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import URL, Engine

import storelayer
from copy_datasets import (
    AllTypesBase,
    fill_all_types,
    fill_chinook,
    fill_reference,
    schema_shape,
)
from storelayer import Backend
from storelayer._core import opened
from storelayer.backup.counts import table_checksum
from storelayer.copy import SchemaSource, copy_database
from storelayer.copy.types import reflect, target_metadata
from storelayer.migrations import MigrationManager
from storelayer.migrations.schema import compare
from storelayer.plugins import get_plugin_manager
from storelayer.reference.models import CacheEntry, User
from storelayer.reference.models import metadata as reference_metadata
from storelayer.testing import Provisioner, provision_or_skip
from storelayer.testing.plugin import selected_backends

DATASETS = ("reference", "chinook", "all_types")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "direction" in metafunc.fixturenames:
        names = selected_backends(metafunc.config)
        pairs = [(a, b) for a in names for b in names if a != b]
        metafunc.parametrize("direction", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])


@pytest.fixture(scope="module")
def provisioner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioner]:
    provisioner = Provisioner(tmp_path_factory.mktemp("copy-matrix"))
    yield provisioner
    provisioner.close()


def _backend(name: str) -> Backend:
    return get_plugin_manager().backends()[name]


@contextmanager
def _engine(url: URL) -> Iterator[Engine]:
    with opened(url) as core:
        yield core.engine


@pytest.fixture(scope="module")
def sources(
    provisioner: Provisioner, chinook_sample: Path
) -> Callable[[str, str], URL]:
    """A filled source database per backend and dataset, made once per module."""
    made: dict[tuple[str, str], URL] = {}

    def source(backend_name: str, dataset: str) -> URL:
        key = (backend_name, dataset)
        if key not in made:
            backend = _backend(backend_name)
            url = provision_or_skip(provisioner, backend)
            if dataset == "chinook":
                fill_chinook(url, chinook_sample)
            else:
                with _engine(url) as engine:
                    (fill_reference if dataset == "reference" else fill_all_types)(engine)
            made[key] = url
        return made[key]

    return source


def _checksums(url: URL, tables: MetaData) -> dict[str, tuple[int, str]]:
    with _engine(url) as engine, engine.connect() as connection:
        return {t.name: table_checksum(connection, t) for t in tables.sorted_tables}


def _the_application_writes(url: URL) -> None:
    """The copy is usable: the next user gets the next key, JSON stays JSON."""
    with storelayer.connect(url) as db, db.session() as session:
        users = session.repository(User)
        user = users.create(username="after-copy", email="after@example.com",
                            password_hash=b"x")
        assert user.id == 6
        entry = session.repository(CacheEntry).get_by(key="k1")
        assert entry is not None and entry.value == [1, {"x": None}]


@pytest.mark.parametrize("dataset", DATASETS)
def test_copy_keeps_rows_and_schema(
    direction: tuple[str, str],
    dataset: str,
    sources: Callable[[str, str], URL],
    provisioner: Provisioner,
) -> None:
    source_name, target_name = direction
    source = sources(source_name, dataset)
    target = provision_or_skip(provisioner, _backend(target_name))
    known = SchemaSource(models=AllTypesBase.metadata) if dataset == "all_types" else None
    report = copy_database(source, target, schema=known)
    assert report.rows > 0
    if dataset == "reference":
        tables = reference_metadata
        with MigrationManager(target) as manager:
            assert manager.check() == []
            assert manager.current() == ("0002",)
        assert "migrations" in report.schema
    elif dataset == "all_types":
        tables = AllTypesBase.metadata
        with _engine(target) as engine, engine.connect() as connection:
            assert compare(connection, tables) == []
    else:
        with _engine(source) as source_engine, _engine(target) as target_engine:
            assert schema_shape(target_engine) == schema_shape(source_engine)
            tables = target_metadata(reflect(source_engine), same_dialect=False)[0]
    expected = _checksums(source, tables)
    assert _checksums(target, tables) == expected
    assert {n: (t["rows"], t["checksum"]) for n, t in report.tables.items()} == {
        n: v for n, v in expected.items() if n in report.tables
    }
    if dataset == "reference":
        _the_application_writes(target)
