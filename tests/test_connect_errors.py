"""An unreachable host and an unknown scheme each give one line that names the problem
and never the password; a silent host answers within the timeout. (A wrong password:
storelayer.testing.server_suite, run by each server backend.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

import storelayer
from storelayer import BackendNotFound, ConnectionFailed

SECRET = "Sup3r-s3cret-pw"
SERVERS = {"postgresql": "postgresql", "mysql": "mysql"}


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert SECRET not in message


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_unknown_scheme_is_one_line() -> None:
    with pytest.raises(BackendNotFound) as info:
        storelayer.connect(f"cassandra://admin:{SECRET}@db/ks")
    assert_one_clean_line(str(info.value))
    assert "'cassandra'" in str(info.value)


@pytest.mark.parametrize("scheme", sorted(SERVERS))
def test_refused_connection_names_host_without_password(scheme: str, closed_port: int) -> None:
    db = storelayer.connect(
        f"{scheme}://app:{SECRET}@127.0.0.1:{closed_port}/app", connect_timeout=3
    )
    with pytest.raises(ConnectionFailed) as info, db.session() as s:
        s.execute(text("SELECT 1"))
    message = str(info.value)
    assert_one_clean_line(message)
    assert f"127.0.0.1:{closed_port}" in message
    assert "refused" in message.lower()
    assert info.value.transient is True
    report = db.health()
    assert not report.healthy
    assert SECRET not in str(report.to_dict())
    db.dispose()


@pytest.mark.parametrize("scheme", sorted(SERVERS))
def test_silent_host_fails_within_connect_timeout(scheme: str, silent_port: int) -> None:
    db = storelayer.connect(
        f"{scheme}://app:{SECRET}@127.0.0.1:{silent_port}/app", connect_timeout=2
    )
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info, db.session() as s:
        s.execute(text("SELECT 1"))
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 1.5, f"took {elapsed:.1f}s with connect_timeout=2"
    assert_one_clean_line(str(info.value))
    db.dispose()


@pytest.mark.parametrize("scheme", sorted(SERVERS))
def test_async_silent_host_fails_within_connect_timeout(scheme: str, silent_port: int) -> None:
    async def attempt() -> None:
        db = storelayer.connect_async(
            f"{scheme}://app:{SECRET}@127.0.0.1:{silent_port}/app", connect_timeout=2
        )
        try:
            async with db.session() as s:
                await s.execute(text("SELECT 1"))
        finally:
            await db.dispose()

    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        asyncio.run(attempt())
    assert time.monotonic() - started < 2 + 1.5
    assert_one_clean_line(str(info.value))
