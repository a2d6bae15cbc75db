"""A pg_auto_failover formation (storelayer.testing.clusters): multi-host URLs, backup
through them, a planned switchover under writers."""

from __future__ import annotations

import pytest

from storelayer.testing import PgAutoFailover

pytestmark = pytest.mark.cluster


def test_the_fixture_runs_a_primary_and_a_standby(pg_failover: PgAutoFailover) -> None:
    states = sorted(reported for reported, _goal in pg_failover.states().values())
    assert states == ["primary", "secondary"]
    uri = pg_failover.uri()
    assert uri.startswith("postgres://127.0.0.1:")
    assert uri.count(",") == 1
    assert "target_session_attrs=read-write" in uri
