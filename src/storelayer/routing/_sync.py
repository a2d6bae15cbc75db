"""``SyncRouting``: the replicas of a ``Database`` — their engines, the lag sampler (one
daemon thread per replica, so a hung replica delays only its own samples) and the
session factories that route units of work.

``Routing`` is everything it shares with its twin ``aio._routing.AsyncRouting``: the replica
engines, the ``ReplicaSet`` deciding over their sync engines, and the routed sessions;
a twin names its session classes, its engines' URL and sync engine, and how it sleeps.
Only starting the sampler and disposing differ, because the async twin awaits them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy.orm import sessionmaker

from storelayer._conflicts import one_line
from storelayer._engines import READ_ONLY_OPTION
from storelayer.errors import ConfigurationError
from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._replicas import ReplicaSet, RoutingSnapshot
from storelayer.routing._session import (
    ROUTE_KEY,
    RoutedSession,
    RoutedWriteSession,
    SessionRoute,
)
from storelayer.routing._token import ConsistencyToken, InvalidToken, as_token
from storelayer.session import AUTOCOMMIT_KEY, Session, session_info

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from storelayer.backend import Backend
    from storelayer.config import Settings

log = logging.getLogger("storelayer.routing")

READ_ONLY = {READ_ONLY_OPTION: True}
#: Values of ``using=``.
USING = ("primary", "replica", "auto")
#: ``create_engine(url, role, overrides)``: the database's engine factory (metrics, pool
#: guards and plugin hooks included); ``overrides`` update the backend's tuning.
EngineFactory = Callable[[Any, str, Mapping[str, Any]], Any]


class _HasInfo(Protocol):
    @property
    def info(self) -> Any: ...


E = TypeVar("E")  # the engines of the front: Engine or AsyncEngine
S = TypeVar("S", bound=_HasInfo)  # its sessions: Session or AsyncSession


class Routing(Generic[E, S]):
    """Replica engines (``engines``, by role) and routed session factories. A front
    names how it makes sessions and reaches a replica, and how its sampler starts."""

    #: ``sessionmaker`` or ``async_sessionmaker``, and the classes of read and of
    #: write sessions.
    make_sessions: ClassVar[Callable[..., Any]]
    session_classes: ClassVar[tuple[type, type]]

    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        primary: E,
        create_engine: EngineFactory,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self.policy = policy or RoutingPolicy.from_env()
        # One engine per replica URL, with the backend's replica pool options minus
        # those the user set explicitly.
        explicit = set(settings.pool_overrides()) | set(settings.engine_options)
        self.engines: dict[str, E] = {}
        for index, raw in enumerate(settings.replica_urls):
            url = self.replica_url(backend, backend.normalize_url(raw))
            options = backend.replication.pool_options(url, settings)
            overrides = {key: value for key, value in options.items() if key not in explicit}
            self.engines[f"replica:{index}"] = create_engine(url, f"replica:{index}", overrides)
        sync = {name: self.sync_engine(engine) for name, engine in self.engines.items()}
        autocommit = {**READ_ONLY, **backend.autocommit_read_options()}
        self.replicas = ReplicaSet(
            read_engines={n: e.execution_options(**READ_ONLY) for n, e in sync.items()},
            autocommit_engines={n: e.execution_options(**autocommit) for n, e in sync.items()},
            backend=backend,
            policy=self.policy,
            max_lag=settings.max_replica_lag,
            sleep=self.sleep,
        )
        self._primary = self.sync_engine(primary)
        self._primary_read = self._primary.execution_options(**READ_ONLY)
        self._sessions: dict[bool, Callable[[], S]] = {  # by "is a read session"
            read: self.make_sessions(
                primary, class_=cls, expire_on_commit=False, info=session_info(backend)
            )
            for read, cls in zip((True, False), self.session_classes, strict=True)
        }

    def replica_url(self, backend: Backend, url: URL) -> URL:
        """The URL of this front's engine on a replica's ``url``."""
        return url

    def sync_engine(self, engine: E) -> Engine:
        """The sync engine of one of this front's engines."""
        return engine  # type: ignore[return-value]

    def sleep(self, seconds: float) -> None:
        """How a read waiting for its token sleeps."""
        time.sleep(seconds)

    def _factory(
        self,
        using: str | None,
        token: str | ConsistencyToken | None,
        read: bool,
        autocommit: bool,
        primary: Engine | None,
    ) -> RoutedFactory[S] | None:
        """The session factory of a unit of work, ``read_session()`` (``read``) or
        ``session()``, with ``using`` overriding the policy; None when the plain
        primary session is right. A unit at a chosen isolation level (``primary``)
        reads on the primary too: a replica takes no part in its transaction."""
        if using is not None and using not in USING:
            raise ConfigurationError(
                f"using={using!r} is not a routing target; use one of {', '.join(USING)}"
            )
        if not self.engines or (read and using == "primary"):
            return None
        if using == "primary":
            mode = "primary"
        elif read or using == "replica":
            mode = "read"
        else:
            automatic = using == "auto" or self.policy.automatic
            mode = "auto" if automatic and primary is None else "primary"
        return RoutedFactory(self, mode, token, autocommit and mode == "read", primary)

    def new_session(
        self,
        mode: str,
        token: str | ConsistencyToken | None,
        autocommit: bool,
        primary: Engine | None = None,
    ) -> S:
        """A routed session (see ``RoutedFactory``); ``primary``: the primary's engine
        at the unit's isolation level."""
        s = self._sessions[mode == "read"]()
        s.info[ROUTE_KEY] = self._route(mode, token, autocommit, primary)
        if autocommit:
            s.info[AUTOCOMMIT_KEY] = True
        return s

    def _route(
        self,
        mode: str,
        token: str | ConsistencyToken | None,
        autocommit: bool,
        isolated: Engine | None,
    ) -> SessionRoute:
        """A new session's route; an unreadable token pins the reads to the primary."""
        primary = self._primary_read if mode == "read" else isolated or self._primary
        try:
            parsed = as_token(token) if mode != "primary" else None
        except InvalidToken as error:
            log.warning("ignoring consistency token, reading from the primary: %s", error)
            self.replicas.count("fallbacks", "invalid_token")
            self.replicas.count("reads", "primary")
            return SessionRoute(self.replicas, mode, primary, None, pinned=True)
        return SessionRoute(self.replicas, mode, primary, parsed, autocommit=autocommit)

    def last_write_token(self) -> str | None:
        """The token of the last commit that wrote, in this thread or asyncio task."""
        return self.replicas.last_token.get()

    def stats(self) -> RoutingSnapshot:
        """The routing counters and the state of each replica."""
        return self.replicas.snapshot()


class RoutedFactory(Generic[S]):
    """Makes the sessions of one unit of work; ``writes`` tells the database whether
    the unit may write (a read-only error is then explained); ``primary`` is the
    primary's engine at the unit's isolation level (None: the database's default)."""

    def __init__(
        self,
        routing: Routing[Any, S],
        mode: str,
        token: str | ConsistencyToken | None,
        autocommit: bool,
        primary: Engine | None = None,
    ) -> None:
        self.routing, self.mode, self.token, self.autocommit = routing, mode, token, autocommit
        self.primary = primary
        self.writes = mode != "read"

    def __call__(self) -> S:
        return self.routing.new_session(self.mode, self.token, self.autocommit, self.primary)


class SyncRouting(Routing["Engine", Session]):
    """Replica engines and routed session factories of one ``Database``."""

    make_sessions = sessionmaker
    session_classes = (RoutedSession, RoutedWriteSession)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sampler = ThreadSampler(self.replicas, self._probe)

    def factory(
        self,
        using: str | None,
        token: str | ConsistencyToken | None,
        *,
        read: bool,
        autocommit: bool = False,
        primary: Engine | None = None,
    ) -> RoutedFactory[Session] | None:
        """A routed session factory; None when the plain primary session is right.
        ``primary``: the primary's engine at the isolation level the unit asked for."""
        routed = self._factory(using, token, read, autocommit, primary)
        if routed is not None and routed.mode != "primary":
            self.sampler.ensure_started()
        return routed

    def _probe(self, name: str) -> float | None:
        with self.engines[name].connect() as connection:
            return self.replicas.measure(connection)

    def dispose(self) -> None:
        """Stop sampling and close every replica connection."""
        self.sampler.stop()
        for engine in self.engines.values():
            engine.dispose()


_SAMPLERS: weakref.WeakSet[ThreadSampler] = weakref.WeakSet()


def _forked() -> None:
    """In a forked child the parent's sampler threads are gone: start anew on use."""
    for sampler in list(_SAMPLERS):  # a lock a dead thread held would never open
        sampler.running = False
        sampler.lock = threading.Lock()
        sampler.replicas.reset_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class ThreadSampler:
    """Every ``sample_interval`` seconds, asks each replica how far behind it is, and
    probes ejected replicas once their cool-off is over; in daemon threads started on
    first use and again after a fork."""

    def __init__(self, replicas: ReplicaSet, probe: Callable[[str], float | None]) -> None:
        self.replicas, self.probe = replicas, probe
        self.running = False  # threads do not survive a fork: see _forked()
        self.lock = threading.Lock()
        self._waited = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        _SAMPLERS.add(self)

    def ensure_started(self) -> None:
        """Start the threads unless they run in this process; the first time, wait
        (bounded) until every replica was sampled or probed once."""
        if self.running and self._waited:
            return
        with self.lock:
            if not self.running:
                self._stop = threading.Event()
                self._threads = [
                    threading.Thread(
                        target=self._run,
                        args=(name, self._stop),
                        name=f"storelayer-sampler-{name}",
                        daemon=True,
                    )
                    for name in self.replicas.read_engines
                ]
                for thread in self._threads:
                    thread.start()
                self.running = True
        deadline = time.monotonic() + self.replicas.policy.first_sample_wait
        while not (self._waited or self.replicas.has_samples()) and time.monotonic() < deadline:
            time.sleep(0.005)
        self._waited = True  # once: a replica that never answers must not stall reads

    def _run(self, name: str, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.replicas.should_sample(name):
                try:
                    lag = self.probe(name)
                except Exception as error:
                    self.replicas.record_failure(name, one_line(error))
                else:
                    self.replicas.record_sample(name, lag)
            stop.wait(self.replicas.policy.sample_interval)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the threads (a thread stuck in a query is left to die with the process)."""
        with self.lock:
            self._stop.set()
            threads, self._threads = self._threads, []
            self.running = False
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
