"""An unknown scheme gives one line that names the problem and never the password; a
silent host answers within the timeout, in both APIs. (A refused connection and a
wrong password: storelayer.testing.server_suite, run by each server backend.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

import storelayer
from storelayer import BackendNotFound, ConnectionFailed

SECRET = "Sup3r-s3cret-pw"


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert SECRET not in message


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


def run_select_1(db: storelayer.Database | storelayer.AsyncDatabase) -> None:
    async def in_async(db: storelayer.AsyncDatabase) -> None:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))

    if isinstance(db, storelayer.AsyncDatabase):
        asyncio.run(in_async(db))
    else:
        with db.session() as s:
            s.execute(text("SELECT 1"))


@pytest.mark.parametrize(
    "opener", [storelayer.connect, storelayer.connect_async], ids=["sync", "async"]
)
@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_silent_host_fails_within_connect_timeout(
    scheme: str, opener: Callable[..., Any], silent_port: int
) -> None:
    db = opener(f"{scheme}://app:{SECRET}@127.0.0.1:{silent_port}/app", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        run_select_1(db)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 1.5, f"took {elapsed:.1f}s with connect_timeout=2"
    assert_one_clean_line(str(info.value))
    result = db.dispose()
    if asyncio.iscoroutine(result):
        asyncio.run(result)
