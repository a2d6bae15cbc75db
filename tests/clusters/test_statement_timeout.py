"""A statement the server cancels for running past its time limit is a storelayer
``StatementTimeout`` (never the driver's raw error) on every server backend, through the
sync and the async API, on a server of its own (the pooler's case: test_pgbouncer.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer import StatementTimeout
from storelayer.plugins import get_plugin_manager
from storelayer.testing import Provisioner, provision_or_skip

#: backend -> (a statement the server stops after 1 s, the settings that ask it to).
SLOW = {
    "postgresql": ("SELECT pg_sleep(3)", {"statement_timeout": 1}),
    "mysql": ("SET STATEMENT max_statement_time=1 FOR SELECT SLEEP(3)", {}),
}


def run(url: URL, mode: str, statement: str, settings: dict[str, object]) -> None:
    if mode == "sync":
        db = storelayer.connect(url, **settings)  # type: ignore[arg-type]
        try:
            with db.session() as s:
                s.execute(text(statement))
        finally:
            db.dispose()
        return

    async def main() -> None:
        adb = storelayer.connect_async(url, **settings)  # type: ignore[arg-type]
        try:
            async with adb.session() as s:
                await s.execute(text(statement))
        finally:
            await adb.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(SLOW))
def test_a_cancelled_statement_is_a_statement_timeout(
    storelayer_provisioner: Provisioner, name: str, mode: str
) -> None:
    url = provision_or_skip(storelayer_provisioner, get_plugin_manager().backends()[name])
    statement, settings = SLOW[name]
    with pytest.raises(StatementTimeout, match="statement_timeout"):
        run(url, mode, statement, settings)
