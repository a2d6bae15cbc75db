"""Network faults between storelayer and the shared servers, made by the fault proxy
(storelayer.testing.FaultProxy) on 127.0.0.1: the servers themselves are untouched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from _checks import record, wait_until_healthy
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer.testing import FaultProxy
from storelayer.testing.proxy import ProxyFactory

pytestmark = pytest.mark.requires("server")


@pytest.fixture
def proxied(
    database_url: URL, backend: storelayer.Backend, fault_proxy: ProxyFactory
) -> Iterator[tuple[FaultProxy, storelayer.Database]]:
    """A proxy in front of the scratch database's server, and a database through it."""
    proxy = fault_proxy(database_url)
    with storelayer.connect(
        proxy.url(database_url), backend=backend.name, connect_timeout=2, health_timeout=1.0
    ) as db:
        yield proxy, db


def one(s: storelayer.Session) -> int:
    return int(s.execute(text("SELECT 1")).scalar_one())


def test_reset_connections_are_replaced_by_the_next_unit(
    proxied: tuple[FaultProxy, storelayer.Database],
) -> None:
    proxy, db = proxied
    assert db.run_in_transaction(one) == 1
    assert proxy.reset() >= 1
    assert db.run_in_transaction(one) == 1


def test_a_connection_cut_inside_a_unit_reruns_the_whole_unit(
    proxied: tuple[FaultProxy, storelayer.Database],
) -> None:
    proxy, db = proxied
    calls = []

    def unit(s: storelayer.Session) -> int:
        calls.append(1)
        value = one(s)
        if len(calls) == 1:
            proxy.cut()
        return value + one(s)

    assert db.run_in_transaction(unit) == 2
    assert len(calls) == 2
    assert db.metrics()["engines"]["primary"]["disconnects"] >= 1


def test_a_server_down_for_a_moment_is_ridden_out(
    proxied: tuple[FaultProxy, storelayer.Database],
) -> None:
    proxy, db = proxied
    db.run_in_transaction(one)
    proxy.refuse()
    healer = threading.Timer(0.8, proxy.heal)
    healer.start()
    started = time.monotonic()
    try:
        assert db.run_in_transaction(one, retries=20, max_seconds=15) == 1
    finally:
        healer.join()
    assert time.monotonic() - started >= 0.5
    assert db.metrics()["engines"]["primary"]["retries"] >= 1


def test_health_answers_within_its_deadline_when_the_network_hangs(
    proxied: tuple[FaultProxy, storelayer.Database], backend: storelayer.Backend
) -> None:
    proxy, db = proxied
    assert wait_until_healthy(db).status == "healthy"
    proxy.blackhole()
    try:
        started = time.monotonic()
        report = db.health()
        elapsed = time.monotonic() - started
    finally:
        proxy.heal()
    assert report.status == "down"
    # the deadline fired, or the driver's own connect timeout did, inside it
    assert any(m in (report.error or "") for m in ("no answer within 1s", "timeout"))
    assert elapsed < 1.5
    assert wait_until_healthy(db).status == "healthy"
    record(f"{backend.name} blackholed health", {"health_seconds": round(elapsed, 2)})


def test_latency_added_by_the_network_is_reported(
    proxied: tuple[FaultProxy, storelayer.Database], backend: storelayer.Backend
) -> None:
    proxy, through_proxy = proxied
    url = through_proxy.url
    # Each probe opens a connection: a handshake of several round trips, all delayed.
    with storelayer.connect(url, backend=backend.name, health_timeout=10) as db:
        assert db.health().status == "healthy"  # the probe engine has met the server
        proxy.delay(0.03)  # each way: a round trip takes 60 ms more
        report = db.health()
    assert report.status == "healthy"
    assert report.latency_ms is not None and report.latency_ms >= 60
