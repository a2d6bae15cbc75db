"""One table of failure scenarios, each written once and run through the sync API
(``connect()``) and the async API (``connect_async()``) on every backend: both must end
the same way (the same storelayer error class, the same health verdict, the same metrics
and hook events), and that way must be the one the scenario expects."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import String, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Backend, hookimpl
from storelayer.faults import inject_transient_errors
from storelayer.metrics import MetricsEvent
from storelayer.plugins import get_plugin_manager

MODES = ("sync", "async")


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "parity_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


async def aw(value: Any) -> Any:
    """The scenario's code drives both APIs: await what the async API returns."""
    return await value if inspect.isawaitable(value) else value


@asynccontextmanager
async def unit(manager: Any) -> AsyncIterator[Any]:
    """Enter a unit of work of either API."""
    if isinstance(manager, AbstractContextManager):
        with manager as value:
            yield value
    else:
        async with manager as value:
            yield value


#: SQL giving this connection's id, and SQL ending the connection with that id.
KILL_SQL = {
    "postgresql": ("SELECT pg_backend_pid()", "SELECT pg_terminate_backend({})"),
    "mysql": ("SELECT CONNECTION_ID()", "KILL {}"),
}
READ_ONLY_SQL = {
    "sqlite": "PRAGMA query_only = ON",
    "postgresql": "SET TRANSACTION READ ONLY",
    "mysql": "SET TRANSACTION READ ONLY",
}


@dataclass
class Context:
    db: Any
    url: URL
    backend: Backend


# -- the scenarios: each written once --------------------------------------------------


async def unique_violation(c: Context) -> Any:
    async with unit(c.db.session()) as s:
        await aw(s.repository(Item).create(id=1, name="same"))
    async with unit(c.db.session()) as s:
        await aw(s.repository(Item).create(id=2, name="same"))


async def pool_exhausted(c: Context) -> Any:
    async with unit(c.db.session()) as holder:
        await aw(holder.execute(text("SELECT 1")))  # the only connection stays checked out
        async with unit(c.db.session()) as s:
            await aw(s.execute(text("SELECT 1")))


async def read_only_database(c: Context) -> Any:
    async with unit(c.db.session()) as s:
        await aw(s.execute(text(READ_ONLY_SQL[c.backend.dialect])))
        await aw(s.execute(text("INSERT INTO parity_items (id, name) VALUES (1, 'x')")))


async def commit_lost_injected(c: Context) -> Any:
    with inject_transient_errors(c.db, at="commit_lost"):
        async with unit(c.db.session()) as s:
            await aw(s.repository(Item).create(id=1, name="maybe"))


async def commit_lost_for_real(c: Context) -> Any:
    own_id, kill = KILL_SQL[c.backend.dialect]
    admin = create_engine(c.backend.normalize_url(c.url))
    try:
        async with unit(c.db.session()) as s:
            await aw(s.execute(text("INSERT INTO parity_items (id, name) VALUES (1, 'x')")))
            pid = (await aw(s.execute(text(own_id)))).scalar()
            with admin.connect() as conn:
                conn.execute(text(kill.format(int(pid))))
                conn.commit()
            await asyncio.sleep(0.2)  # the server closes the killed connection
    finally:
        admin.dispose()


async def retries_counted(c: Context) -> Any:
    def work(s: Any) -> Any:  # async: a coroutine, which run_in_transaction awaits
        return s.repository(Item).create(id=1, name="retried")

    with inject_transient_errors(c.db, times=2, match="INSERT"):
        await aw(c.db.run_in_transaction(work, retries=3))
    return c.db.metrics()["engines"]["primary"]["retries"]


async def health_of_a_down_server(c: Context) -> Any:
    report = await aw(c.db.health())
    return (report.status, report.healthy, report.ready, len(report.problems) > 0)


async def health_of_a_live_server(c: Context) -> Any:
    report = await aw(c.db.health())
    primary = report.engines[0]
    pool = sorted(k for k in primary.pool if k in {"size", "max_overflow", "checked_out"})
    return (report.status, report.ready, primary.role, primary.reachable, pool)


Scenario = Callable[[Context], Awaitable[Any]]

#: name -> (scenario, connect() keywords, what both APIs must end with).
SCENARIOS: dict[str, tuple[Scenario, dict[str, Any], Any]] = {
    "unique violation": (unique_violation, {}, storelayer.Conflict),
    "pool exhausted": (
        pool_exhausted,
        {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5},
        storelayer.PoolExhausted,
    ),
    "read-only database": (read_only_database, {}, storelayer.ReadOnlyDatabase),
    "COMMIT lost (injected)": (commit_lost_injected, {}, storelayer.CommitOutcomeUnknown),
    "COMMIT lost (connection killed)": (commit_lost_for_real, {}, storelayer.CommitOutcomeUnknown),
    "retries counted": (retries_counted, {}, 2),
    "health of a live server": (
        health_of_a_live_server,
        {},
        ("healthy", True, "primary", True, ["checked_out", "max_overflow", "size"]),
    ),
    "health of a down server": (
        health_of_a_down_server,
        {"down": True},
        ("down", False, False, True),
    ),
}


def down_url(url: URL, backend: Backend, tmp_path: Any) -> URL:
    if not backend.features.server:
        return url.set(database=str(tmp_path / "no-such-directory" / "x.db"))
    return url.set(host="127.0.0.1", port=9)  # discard: nothing listens


def run_scenario(
    mode: str,
    scenario: Scenario,
    url: URL,
    backend: Backend,
    options: dict[str, Any],
    tmp_path: Any = None,
) -> Any:
    engine = create_engine(backend.normalize_url(url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    options = dict(options)
    if options.pop("down", False):
        url = down_url(url, backend, tmp_path)
    opener = storelayer.connect if mode == "sync" else storelayer.connect_async
    db = opener(url, backend=backend.name, health_timeout=3, **options)

    async def go() -> Any:
        try:
            return await scenario(Context(db, url, backend))
        finally:
            await aw(db.dispose())

    try:
        return asyncio.run(go())
    except storelayer.StorelayerError as error:
        return type(error)
    except Exception as error:  # a raw driver or SQLAlchemy error: the leak under test
        return f"raw {type(error).__module__}.{type(error).__name__}"


@pytest.mark.parametrize(
    "name",
    [
        # an embedded database has no connection to lose
        pytest.param(n, marks=pytest.mark.requires("server")) if s is commit_lost_for_real else n
        for n, (s, _, _) in SCENARIOS.items()
    ],
)
def test_both_apis_end_every_failure_scenario_the_same_way(
    name: str, database_url: URL, backend: Backend, tmp_path: Any
) -> None:
    scenario, options, expected = SCENARIOS[name]
    if backend.features.commit_outcome and expected is storelayer.CommitOutcomeUnknown:
        # The server is asked: the injected loss came after a real COMMIT (committed:
        # no error); the killed connection never committed (a TransientError, which
        # run_in_transaction retries).
        expected = None if scenario is commit_lost_injected else storelayer.TransientError
    outcomes = {
        mode: run_scenario(mode, scenario, database_url, backend, options, tmp_path)
        for mode in MODES
    }
    assert outcomes == {"sync": expected, "async": expected}


class EventRecorder:
    def __init__(self) -> None:
        self.events: list[MetricsEvent] = []

    @hookimpl
    def storelayer_metrics_event(self, event: MetricsEvent) -> None:
        self.events.append(event)


async def workload(c: Context) -> Any:
    async with unit(c.db.session()) as s:
        items = s.repository(Item)
        await aw(items.create(id=1, name="one"))
        await aw(items.create(id=2, name="two"))
    async with unit(c.db.read_session()) as s:
        await aw(s.repository(Item).count())
    return c.db.metrics()["engines"]["primary"]


def test_both_apis_count_the_same_statements_and_send_the_same_hook_events(
    database_url: URL, backend: Backend
) -> None:
    seen: dict[str, Any] = {}
    manager = get_plugin_manager()
    for mode in MODES:
        recorder = EventRecorder()
        name = manager.register(recorder, name=f"parity-recorder-{mode}")
        try:
            metrics = run_scenario(mode, workload, database_url, backend, {"plugins": manager})
        finally:
            manager.unregister(name)
        kinds = sorted(e.kind for e in recorder.events)
        seen[mode] = (metrics["statements"], metrics["errors"], kinds)
    assert seen["sync"][2], "the hook was never called"
    assert seen["sync"] == seen["async"]
