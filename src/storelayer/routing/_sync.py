"""``SyncRouting``: the replicas of a ``Database`` — their engines, the lag sampler and
the session factories that route units of work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from storelayer._engines import READ_ONLY_OPTION
from storelayer.routing._core import RoutingCore
from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._sampler import ThreadSampler
from storelayer.routing._session import (
    ROUTE_KEY,
    RoutedSession,
    RoutedWriteSession,
    SessionRoute,
)
from storelayer.routing._stats import RoutingSnapshot
from storelayer.routing._token import ConsistencyToken
from storelayer.session import AUTOCOMMIT_KEY, Session, session_info

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from storelayer.backend import Backend
    from storelayer.config import Settings

READ_ONLY = {READ_ONLY_OPTION: True}
#: ``create_engine(url, role, overrides)``: the database's engine factory (metrics, pool
#: guards and plugin hooks included); ``overrides`` update the backend's tuning.
EngineFactory = Callable[[Any, str, Mapping[str, Any]], Any]


def replica_pool_overrides(backend: Backend, url: URL, settings: Settings) -> dict[str, Any]:
    """The backend's replica pool options, minus those the user set explicitly."""
    explicit = set(settings.pool_overrides()) | set(settings.engine_options)
    replica = backend.replication.pool_options(url, settings)
    return {key: value for key, value in replica.items() if key not in explicit}


def replica_names(settings: Settings) -> list[str]:
    """``replica:0``, ``replica:1``... one per configured replica URL."""
    return [f"replica:{index}" for index in range(len(settings.replica_urls))]


class SyncRouting:
    """Replica engines and routed session factories of one ``Database``."""

    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        primary: Engine,
        create_engine: EngineFactory,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy or RoutingPolicy.from_env()
        self.engines: dict[str, Engine] = {}
        for name, raw in zip(replica_names(settings), settings.replica_urls, strict=True):
            url = backend.normalize_url(raw)
            overrides = replica_pool_overrides(backend, url, settings)
            self.engines[name] = create_engine(url, name, overrides)
        autocommit = {**READ_ONLY, **backend.autocommit_read_options()}
        self.core = RoutingCore(
            read_engines={n: e.execution_options(**READ_ONLY) for n, e in self.engines.items()},
            autocommit_engines={
                n: e.execution_options(**autocommit) for n, e in self.engines.items()
            },
            backend=backend,
            policy=self.policy,
            max_lag=settings.max_replica_lag,
        )
        self.sampler = ThreadSampler(self.core.router, self._probe, self.policy.sample_interval)
        self._sampled = False
        self._factories: dict[tuple[str, bool], RoutedFactory] = {}
        self._primary = primary
        self._primary_read = primary.execution_options(**READ_ONLY)
        self._sessions = {
            kind: sessionmaker(
                primary, class_=kind, expire_on_commit=False, info=session_info(backend)
            )
            for kind in (RoutedSession, RoutedWriteSession)
        }

    @property
    def enabled(self) -> bool:
        """Whether any replica is configured."""
        return bool(self.engines)

    def factory(
        self,
        using: str | None,
        token: str | ConsistencyToken | None,
        *,
        read: bool,
        autocommit: bool = False,
    ) -> RoutedFactory | None:
        """A routed session factory; None when the plain primary session is right."""
        mode = self.core.mode(using, read=read)
        if not self.engines or (read and mode == "primary"):
            return None
        if mode != "primary":
            if not self.sampler.running:
                self.sampler.ensure_started()
            if not self._sampled:  # once: a replica that never answers must not stall reads
                self.sampler.wait_first(self.policy.first_sample_wait)
                self._sampled = True
        with_autocommit = autocommit and mode == "read"
        if token is None:  # the common case: one factory per kind, made once
            key = (mode, with_autocommit)
            cached = self._factories.get(key)
            if cached is None:
                cached = self._factories[key] = self._factory(mode, None, with_autocommit)
            return cached
        return self._factory(mode, token, with_autocommit)

    def _factory(
        self, mode: str, token: str | ConsistencyToken | None, autocommit: bool
    ) -> RoutedFactory:
        primary = self._primary_read if mode == "read" else self._primary
        return RoutedFactory(self, mode, primary, token, autocommit)

    def new_session(
        self, mode: str, primary: Engine, token: str | ConsistencyToken | None, autocommit: bool
    ) -> Session:
        """A routed session (see ``RoutedFactory``)."""
        s = self._sessions[RoutedSession if mode == "read" else RoutedWriteSession]()
        s.info[ROUTE_KEY] = (
            SessionRoute(self.core, mode, primary, None, autocommit=autocommit)
            if token is None
            else self.core.route(mode, primary, token, autocommit=autocommit)
        )
        if autocommit:
            s.info[AUTOCOMMIT_KEY] = True
        return s

    def _probe(self, name: str) -> float | None:
        with self.engines[name].connect() as connection:
            if not self.backend.features.replicas:
                connection.execute(text("SELECT 1"))
                return None
            return self.backend.replication.lag(connection)

    def stats(self) -> RoutingSnapshot:
        """The routing counters and the state of each replica."""
        return self.core.snapshot()

    def dispose(self) -> None:
        """Stop sampling and close every replica connection."""
        self.sampler.stop()
        for engine in self.engines.values():
            engine.dispose()


class RoutedFactory:
    """Makes the sessions of one unit of work; ``writes`` tells the database whether
    the unit may write (a read-only error is then explained)."""

    def __init__(
        self,
        routing: SyncRouting,
        mode: str,
        primary: Engine,
        token: str | ConsistencyToken | None,
        autocommit: bool,
    ) -> None:
        self.routing, self.mode, self.primary = routing, mode, primary
        self.token, self.autocommit = token, autocommit
        self.writes = mode != "read"

    def __call__(self) -> Session:
        return self.routing.new_session(self.mode, self.primary, self.token, self.autocommit)
