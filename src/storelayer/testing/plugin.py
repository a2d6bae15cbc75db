"""The storelayer pytest plugin (entry point ``pytest11``).

For applications (storelayer.testing.app, docs/guide/testing-your-app.md):
``storelayer_schema``, ``migrated_database``, ``migrated_url``, ``rollback_database``,
``rollback_session``, ``async_rollback_database``.

For backends: ``backend_name`` (parametrized over the backends under test), ``backend``,
``database_url`` (a scratch database per backend and run), ``database`` (a connected
``Database``), ``storelayer_provisioner``, ``fault_proxy`` (a fault-injecting TCP
proxy, see storelayer.testing.proxy), ``replica_set`` (a private primary with two
replicas, see storelayer.testing.replicas), ``pgbouncer``, ``pg_failover`` and
``galera_cluster`` (real clusters, one per session, see storelayer.testing.clusters;
mark their tests ``@pytest.mark.cluster``). Markers: ``@pytest.mark.requires("upsert")``
skips when the backend lacks a feature flag; ``only_backends("mysql")`` (on a test or on
one ``pytest.param``) deselects the test on other backends, for combinations that do
not exist there rather than features they lack.

Backends under test: ``--storelayer-backends=a,b`` or ``STORELAYER_TEST_BACKENDS``,
default every registered backend. A server backend that cannot be reached is skipped
with the reason, or fails the run when ``CI`` is true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import fields

import pytest
from sqlalchemy.engine import URL

from storelayer.aio import connect_async
from storelayer.backend import Backend
from storelayer.database import Database, connect
from storelayer.plugins import get_plugin_manager
from storelayer.testing._bridge import BridgedDatabase
from storelayer.testing._provision import Provisioner
from storelayer.testing._provision import provision_or_skip as provision_or_skip
from storelayer.testing._provision import skip_or_fail as skip_or_fail
from storelayer.testing.app import async_rollback_database as async_rollback_database
from storelayer.testing.app import migrated_database as migrated_database
from storelayer.testing.app import migrated_url as migrated_url
from storelayer.testing.app import rollback_database as rollback_database
from storelayer.testing.app import rollback_session as rollback_session
from storelayer.testing.app import storelayer_schema as storelayer_schema
from storelayer.testing.clusters import galera_cluster as galera_cluster  # fixtures
from storelayer.testing.clusters import pg_failover as pg_failover
from storelayer.testing.clusters import pgbouncer as pgbouncer
from storelayer.testing.proxy import fault_proxy as fault_proxy  # a fixture
from storelayer.testing.replicas import replica_set as replica_set  # a fixture


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("storelayer")
    group.addoption(
        "--storelayer-backends",
        default=None,
        help="comma-separated backends to test (default: STORELAYER_TEST_BACKENDS, "
        "else every registered backend)",
    )
    group.addoption(
        "--storelayer-modes",
        default=None,
        help="API modes for tests marked api_modes: sync, async or both (default: "
        "STORELAYER_TEST_MODES, else both)",
    )
    parser.addini("storelayer_migrations", "the application's migration directory, "
                  "relative to the rootdir (migrated_database upgrades it to head)")
    parser.addini("storelayer_models", "module:Base of the application's models "
                  "(migrated_database runs create_all when no migration directory is set)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*features): skip unless the backend has these Features flags"
    )
    config.addinivalue_line(
        "markers", "only_backends(*names): deselected on other backends (no such case there)"
    )
    config.addinivalue_line("markers", "api_modes: run the test through the sync and the async API")
    config.addinivalue_line(
        "markers", "cluster: runs against a real cluster (Galera, pg_auto_failover, PgBouncer)"
    )


def selected_backends(config: pytest.Config) -> list[str]:
    """The backend names under test, in a stable order."""
    raw = config.getoption("--storelayer-backends") or os.environ.get("STORELAYER_TEST_BACKENDS")
    available = sorted(get_plugin_manager().backends())
    if not raw:
        return available
    chosen = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise pytest.UsageError(
            f"--storelayer-backends names unregistered backends {unknown}; registered: {available}"
        )
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names = selected_backends(metafunc.config)
        metafunc.parametrize("backend_name", names, ids=names, scope="session")
    if metafunc.definition.get_closest_marker("api_modes") and (
        "storelayer_mode" in metafunc.fixturenames
    ):
        modes = selected_modes(metafunc.config)
        metafunc.parametrize("storelayer_mode", modes, ids=modes, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the items marked ``only_backends`` whose backend is not named there."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("only_backends")
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend_name") if callspec is not None else None
        out = marker is not None and name is not None and name not in marker.args
        (dropped if out else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def selected_modes(config: pytest.Config) -> list[str]:
    """The API modes the suite runs in: ``--storelayer-modes`` or
    ``STORELAYER_TEST_MODES``, default both."""
    raw = config.getoption("--storelayer-modes") or os.environ.get("STORELAYER_TEST_MODES")
    modes = [m.strip() for m in (raw or "sync,async").split(",") if m.strip()]
    unknown = set(modes) - {"sync", "async"}
    if unknown:
        raise pytest.UsageError(
            f"--storelayer-modes takes sync and/or async, got {sorted(unknown)}"
        )
    return modes


@pytest.fixture(scope="session")
def storelayer_provisioner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioner]:
    """Creates scratch databases; drops them when the test session ends."""
    provisioner = Provisioner(tmp_path_factory.mktemp("storelayer"))
    yield provisioner
    provisioner.close()


@pytest.fixture(scope="session")
def backend(backend_name: str) -> Backend:
    """The ``Backend`` under test."""
    return get_plugin_manager().backends()[backend_name]


@pytest.fixture(scope="session")
def database_url(backend: Backend, storelayer_provisioner: Provisioner) -> URL:
    """A scratch database of the backend under test, for the whole session."""
    return provision_or_skip(storelayer_provisioner, backend)


@pytest.fixture
def storelayer_mode(request: pytest.FixtureRequest) -> str:
    """``"sync"``, or ``"async"`` for tests marked ``api_modes`` run through the async
    API (``database`` is then a bridge over ``AsyncDatabase``)."""
    mode: str = getattr(request, "param", "sync")
    return mode


@pytest.fixture
def database(database_url: URL, backend: Backend, storelayer_mode: str) -> Iterator[Database]:
    """A connected ``Database`` on the scratch database, disposed after the test."""
    db = connect(database_url, backend=backend.name)
    if storelayer_mode == "async":
        if not backend.async_driver:
            db.dispose()
            pytest.skip(f"backend {backend.name!r} declares no async_driver")
        db = BridgedDatabase(connect_async(database_url, backend=backend.name), db)  # type: ignore[assignment]
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _storelayer_requires(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("requires")
    if marker is None:
        return
    if "backend" not in request.fixturenames:
        raise pytest.UsageError(f"{request.node.nodeid}: @requires needs the backend fixture")
    chosen: Backend = request.getfixturevalue("backend")
    known = {f.name for f in fields(chosen.features)}
    for feature in marker.args:
        if feature not in known:
            raise pytest.UsageError(
                f"@requires({feature!r}): no such feature; known: {sorted(known)}"
            )
        if not getattr(chosen.features, feature):
            pytest.skip(f"backend {chosen.name!r} lacks feature {feature!r}")
