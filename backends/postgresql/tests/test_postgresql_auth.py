"""Against a private server that checks passwords: a wrong password is one line, names
the problem, never shows a password, and is not retried."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer.testing import in_ci
from storelayer_postgresql.testing import PostgreSQLServer, find_bindir, make_workdir

SECRET = "Sup3r-s3cret-pw"


@pytest.fixture(scope="module")
def password_server() -> Iterator[URL]:
    if find_bindir() is None:
        if in_ci():
            pytest.fail("PostgreSQL server binaries not found (CI is set)")
        pytest.skip("PostgreSQL server binaries not found; set PG_BINDIR")
    with PostgreSQLServer(make_workdir(), password=SECRET) as server:
        yield server.url


def test_right_password_connects(password_server: URL) -> None:
    db = storelayer.connect(password_server)
    report = db.health()
    assert report.healthy, report
    assert SECRET not in str(report.to_dict())
    db.dispose()


def test_wrong_password_is_one_line_without_password_and_not_retried(password_server: URL) -> None:
    wrong = "not-" + SECRET
    db = storelayer.connect(password_server.set(password=wrong))
    started = time.monotonic()
    with pytest.raises(storelayer.ConnectionFailed) as info:
        db.run_in_transaction(lambda s: s.execute(text("SELECT 1")), retries=5)
    assert time.monotonic() - started < 1.0
    message = str(info.value)
    assert "\n" not in message
    assert wrong not in message and SECRET not in message
    assert "password authentication failed" in message
    assert info.value.transient is False
    db.dispose()
