"""Opening reads on a replica set of fake replicas: which target a read gets, with and
without a token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from storelayer import ConnectionFailed, Features, ReplicaUnavailable
from storelayer.routing import ConsistencyToken, RoutingPolicy
from storelayer.routing._replicas import ReplicaSet

NOW = 1_000_000.0


@dataclass
class FakeConnection:
    server: FakeServer
    closed: bool = False
    began: bool = False

    def rollback(self) -> None:
        pass

    def begin(self) -> None:
        self.began = True

    def in_transaction(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeServer:
    replayed: int = 0
    down: bool = False
    replays_after_checks: int | None = None  # catches up after this many checks
    checks: int = 0
    connections: list[FakeConnection] = field(default_factory=list)

    def connect(self) -> FakeConnection:
        if self.down:
            raise ConnectionFailed("cannot connect to fake: connection refused")
        connection = FakeConnection(self)
        self.connections.append(connection)
        return connection


class FakeBackend:
    features = Features(replicas=True)
    knows_positions = True

    @property
    def replication(self) -> FakeBackend:  # the replication concern is the fake itself
        return self

    def has_replayed(self, connection: Any, position: str) -> bool | None:
        if not self.knows_positions:
            return None
        if not position.isdigit():
            raise ValueError("not a fake position")
        server: FakeServer = connection.server
        server.checks += 1
        if server.replays_after_checks is not None and server.checks > server.replays_after_checks:
            server.replayed = max(server.replayed, int(position))
        return server.replayed >= int(position)


def opener(
    servers: dict[str, FakeServer], backend: FakeBackend | None = None, **policy: Any
) -> ReplicaSet:
    replicas = ReplicaSet(
        read_engines=servers,  # type: ignore[arg-type]
        backend=backend or FakeBackend(),  # type: ignore[arg-type]
        policy=RoutingPolicy(token_wait=0.05, token_poll=0.001, **policy),
        max_lag=5.0,
        sleep=lambda _s: None,
        wall_clock=lambda: NOW,
    )
    for name in servers:
        replicas.record_sample(name, 0.0)
    return replicas


def token(position: str | None, age: float = 0.0) -> ConsistencyToken:
    return ConsistencyToken(position, NOW - age)


def test_a_read_without_token_takes_the_first_candidate_in_a_transaction() -> None:
    servers = {"replica:0": FakeServer(), "replica:1": FakeServer()}
    replicas = opener(servers)
    (first, connection), (second, _) = replicas.open(None), replicas.open(None)
    assert {first, second} == {"replica:0", "replica:1"}
    assert connection is not None and connection.began  # type: ignore[attr-defined]
    assert replicas.snapshot().reads == {"replica:0": 1, "replica:1": 1}


def test_a_token_goes_to_a_replica_that_replayed_it() -> None:
    servers = {"replica:0": FakeServer(replayed=5), "replica:1": FakeServer(replayed=9)}
    replicas = opener(servers)
    for _ in range(4):
        assert replicas.open(token("8"))[0] == "replica:1"
    assert all(c.closed for c in servers["replica:0"].connections)
    assert replicas.snapshot().tokens == {"replayed": 4}


def test_a_token_waits_briefly_for_a_replica_to_catch_up() -> None:
    servers = {"replica:0": FakeServer(replayed=1, replays_after_checks=3)}
    replicas = opener(servers)
    assert replicas.open(token("7"))[0] == "replica:0"
    assert replicas.snapshot().tokens == {"waited": 1}


def test_a_token_no_replica_replays_in_time_goes_to_the_primary() -> None:
    servers = {"replica:0": FakeServer(replayed=1), "replica:1": FakeServer(replayed=2)}
    replicas = opener(servers)
    assert replicas.open(token("7")) == ("primary", None)
    assert all(c.closed for s in servers.values() for c in s.connections)
    snapshot = replicas.snapshot()
    assert snapshot.fallbacks == {"token_not_replayed": 1}
    assert snapshot.reads == {"primary": 1}


def test_fallback_error_raises_replica_unavailable() -> None:
    replicas = opener({"replica:0": FakeServer(replayed=1)}, fallback="error")
    with pytest.raises(ReplicaUnavailable, match="no replica replayed the consistency token"):
        replicas.open(token("7"))
    assert replicas.snapshot().reads == {}


def test_an_unreachable_replica_is_ejected_and_the_read_moves_on() -> None:
    servers = {"replica:0": FakeServer(down=True), "replica:1": FakeServer()}
    replicas = opener(servers)
    assert [replicas.open(None)[0] for _ in range(3)] == ["replica:1"] * 3
    assert replicas.snapshot().ejections == {"replica:0": 1}


def test_no_healthy_replica_means_the_primary() -> None:
    replicas = opener({"replica:0": FakeServer(down=True)})
    assert replicas.open(None)[0] == "primary"
    assert replicas.snapshot().fallbacks == {"no_replica": 1}


def test_a_position_this_backend_never_writes_reads_the_primary() -> None:
    replicas = opener({"replica:0": FakeServer()})
    assert replicas.open(token("0/3000148"))[0] == "primary"
    assert replicas.snapshot().fallbacks == {"invalid_token": 1}


def test_without_positions_a_time_window_decides() -> None:
    backend = FakeBackend()
    backend.knows_positions = False
    replicas = opener({"replica:0": FakeServer()}, backend, time_window=2.0)
    assert replicas.open(token("1", age=0.5))[0] == "primary"
    assert replicas.open(token(None, age=0.5))[0] == "primary"
    assert replicas.open(token("1", age=2.5))[0] == "replica:0"
    assert replicas.open(token(None, age=2.5))[0] == "replica:0"
    assert replicas.snapshot().fallbacks == {"token_window": 2}
