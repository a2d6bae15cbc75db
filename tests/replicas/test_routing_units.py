"""Routing decisions as pure logic: tokens, policy, the replica set's fitness rule,
breakers and order, statements."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import column, delete, insert, select, table, text, update

import storelayer.routing
from storelayer import ConfigurationError, Features
from storelayer.health import fitness_problem
from storelayer.routing import ConsistencyToken, RoutingPolicy
from storelayer.routing._replicas import ReplicaSet
from storelayer.routing._session import is_read_text, is_write
from storelayer.routing._token import InvalidToken

COOKIE_OCTETS = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'()*+-./:<=>?@[]^_`{|}~"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router(
    names: tuple[str, ...] = ("replica:0", "replica:1"),
    *,
    measured: bool = True,
    max_lag: float = 5.0,
    **policy: object,
) -> tuple[ReplicaSet, Clock]:
    clock = Clock()
    chosen = RoutingPolicy(sample_interval=1.0, cooloff=5.0, **policy)  # type: ignore[arg-type]
    replicas = ReplicaSet(
        read_engines=dict.fromkeys(names),  # type: ignore[arg-type]
        backend=SimpleNamespace(features=Features(replicas=measured)),  # type: ignore[arg-type]
        policy=chosen,
        max_lag=max_lag,
        clock=clock,
    )
    return replicas, clock


def test_routing_exports_what_the_docs_and_the_databases_use() -> None:
    assert storelayer.routing.__all__ == [
        "ConsistencyToken",
        "RoutingPolicy",
        "RoutingSnapshot",
        "SyncRouting",
        "session_target",
        "write_token",
    ]


# -- tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("position", ["0/3016BF8", "0-1-42,1-2-7", "3E11FA47-71CA-11E1:1-5", None])
def test_token_round_trips_and_is_cookie_safe(position: str | None) -> None:
    token = ConsistencyToken(position, 1712345678.123)
    text_ = token.encode()
    assert set(text_) <= COOKIE_OCTETS, text_
    assert len(text_) < 80
    parsed = ConsistencyToken.parse(text_)
    assert parsed.position == position
    assert parsed.written_at == pytest.approx(1712345678.123)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "sl2.1.0/1",
        "sl1.abc.0/1",
        "sl1.1.0/1'; DROP TABLE users; --",
        "sl1.1." + "A" * 5000,
        "sl1.1.%00%01",
        "sl1.1.a b",
    ],
)
def test_untrusted_token_text_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        ConsistencyToken.parse(garbage)


def test_token_age_is_never_negative() -> None:
    token = ConsistencyToken(None, 1000.0)
    assert token.age(1002.5) == 2.5
    assert token.age(900.0) == 0.0


# -- policy ----------------------------------------------------------------------------


def test_policy_reads_the_environment_and_keywords_win() -> None:
    env = {
        "STORELAYER_REPLICA_SELECTION": "least-lag",
        "STORELAYER_AUTO_ROUTING": "yes",
        "STORELAYER_REPLICA_FALLBACK": "error",
        "STORELAYER_REPLICA_TOKEN_WAIT": "0.2",
        "STORELAYER_REPLICA_SAMPLE_INTERVAL": "0.5",
        "STORELAYER_REPLICA_COOLOFF": "3",
        "STORELAYER_READ_YOUR_WRITES_WINDOW": "2",
    }
    assert RoutingPolicy.from_env(env, cooloff=7.0) == RoutingPolicy(  # selection, automatic...
        "least_lag", True, "error", token_wait=0.2, sample_interval=0.5, cooloff=7.0, time_window=2
    )
    assert RoutingPolicy(time_window=2).window(5.0) == 2.0
    assert RoutingPolicy().window(5.0) == 5.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORELAYER_REPLICA_SELECTION": "random"}, "round_robin, least_lag"),
        ({"STORELAYER_REPLICA_FALLBACK": "never"}, "primary, error"),
        ({"STORELAYER_REPLICA_TOKEN_WAIT": "soon"}, "must be a number"),
        ({"STORELAYER_AUTO_ROUTING": "maybe"}, "STORELAYER_AUTO_ROUTING"),
        ({"STORELAYER_REPLICA_SAMPLE_INTERVAL": "0"}, "sample_interval must be > 0"),
    ],
)
def test_policy_errors_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RoutingPolicy.from_env(env)


def test_policy_rejects_unknown_options() -> None:
    with pytest.raises(ConfigurationError, match="unknown routing option"):
        RoutingPolicy.from_env({}, max_lag=3)


# -- fitness: one rule for routing and health -----------------------------------------


@pytest.mark.parametrize(
    ("role", "unreachable", "lag", "measured", "problem"),
    [
        ("replica:0", None, 0.5, True, None),
        ("replica:0", None, 1.5, True, "replica:0 is 1.5s behind (threshold 1s)"),
        ("replica:0", None, None, True, "replica:0 replication lag unknown (replication stopped?)"),
        ("replica:0", None, None, False, None),  # SQLite: lag unknown by nature
        ("replica:0", "refused", 0.0, True, "replica:0 unreachable: refused"),
        ("replica:0", "refused", None, False, "replica:0 unreachable: refused"),
        ("primary", None, None, True, None),
        (
            "primary",
            None,
            0.0,
            True,
            "primary is a read-only replica: DATABASE_URL must name the primary",
        ),
    ],
)
def test_one_fitness_rule(
    role: str, unreachable: str | None, lag: float | None, measured: bool, problem: str | None
) -> None:
    found = fitness_problem(
        role, unreachable=unreachable, lag=lag, max_lag=1.0, lag_measured=measured
    )
    assert found == problem


# -- router ----------------------------------------------------------------------------


def test_unsampled_replicas_serve_nothing_when_lag_is_measured() -> None:
    r, _ = router()
    assert r.candidates() == []
    assert not r.has_samples()
    r.record_sample("replica:1", 0.0)
    assert not r.has_samples()  # the first read waits (once, bounded) for both
    assert r.candidates() == ["replica:1"]
    r.record_failure("replica:0", "refused")
    assert r.has_samples()


def test_round_robin_alternates_between_healthy_replicas() -> None:
    r, _ = router()
    r.record_sample("replica:0", 0.0)
    r.record_sample("replica:1", 0.2)
    firsts = [r.candidates()[0] for _ in range(6)]
    assert firsts == ["replica:0", "replica:1"] * 3


def test_least_lag_prefers_the_freshest_replica() -> None:
    r, _ = router(selection="least_lag")
    r.record_sample("replica:0", 2.0)
    r.record_sample("replica:1", 0.5)
    assert all(r.candidates() == ["replica:1", "replica:0"] for _ in range(4))


def test_a_replica_past_the_lag_threshold_or_with_unknown_lag_is_skipped() -> None:
    r, _ = router(max_lag=1.0)
    r.record_sample("replica:0", 1.5)
    r.record_sample("replica:1", None)  # replication stopped: unhealthy, not zero
    assert r.candidates() == []
    r.record_sample("replica:0", 1.0)
    assert r.candidates() == ["replica:0"]


def test_an_overdue_sample_counts_its_age_as_lag() -> None:
    r, clock = router(("replica:0",), max_lag=5.0)
    r.record_sample("replica:0", 0.0)
    clock.now += 2.0  # within two intervals: not overdue
    assert r.candidates() == ["replica:0"]
    clock.now += 4.9  # 4.9 s past two intervals: lag 4.9, within 5
    assert r.candidates() == ["replica:0"]
    clock.now += 0.2
    assert r.candidates() == []


def test_failure_ejects_until_a_probe_after_the_cooloff_succeeds() -> None:
    r, clock = router()
    r.record_sample("replica:0", 0.0)
    r.record_sample("replica:1", 0.0)
    r.record_failure("replica:0", "connection refused")
    assert r.candidates() == ["replica:1"]
    assert not r.should_sample("replica:0")  # cooling off: not even probed
    clock.now += 5.0
    assert r.should_sample("replica:0")
    r.record_failure("replica:0", "still refused")  # failed probe: cool off again
    assert not r.should_sample("replica:0")
    clock.now += 5.0
    r.record_sample("replica:0", 0.0)  # the probe succeeded
    r.record_sample("replica:1", 0.0)
    assert sorted(r.candidates()) == ["replica:0", "replica:1"]
    snapshot = r.snapshot()
    assert snapshot.ejections == {"replica:0": 1}
    assert snapshot.restores == {"replica:0": 1}
    status = {s.name: s for s in r.status()}
    assert status["replica:0"].serving and status["replica:0"].eligible


def test_without_lag_measurement_only_the_breaker_decides() -> None:
    r, _ = router(measured=False)
    assert r.has_samples()
    assert sorted(r.candidates()) == ["replica:0", "replica:1"]
    assert not r.should_sample("replica:0")  # nothing to measure while it serves
    r.record_failure("replica:1", "file missing")
    assert r.candidates() == ["replica:0"]


# -- statements ------------------------------------------------------------------------

ITEMS = table("items", column("id"), column("note"))


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        (select(ITEMS), False),
        (select(ITEMS).with_for_update(), True),
        (select(ITEMS).union(select(ITEMS)), False),
        (insert(ITEMS).values(id=1), True),
        (update(ITEMS).values(note="x"), True),
        (delete(ITEMS), True),
        (text("SELECT 1"), False),
        (text("  /* hint */ select * from items"), False),
        (text("(SELECT 1) UNION (SELECT 2)"), False),
        (text("SHOW TABLES"), False),
        (text("SELECT * FROM items FOR UPDATE"), True),
        (text("SELECT * FROM items LOCK IN SHARE MODE"), True),
        (text("INSERT INTO items VALUES (1)"), True),
        (text("WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d"), True),
        (None, True),
    ],
)
def test_write_classification_is_conservative(statement: object, writes: bool) -> None:
    assert is_write(statement) is writes


def test_read_text_needs_a_leading_read_keyword() -> None:
    assert is_read_text("-- comment\nSELECT 1")
    assert not is_read_text("CALL refresh()")
