"""``storelayer dbshell`` on PostgreSQL: ``psql``, connected through ``PG*`` variables
and the password in a passfile that never rests on disk (the backup tools' way:
:func:`storelayer_postgresql.backup.tool_environment`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from storelayer.backend import Client, ShellCommand
from storelayer.backup.tools import find_tool
from storelayer_postgresql.backup import install_hint, tool_environment

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class PostgreSQLClient(Client):
    """``psql``: nothing from the URL on its command line."""

    @contextmanager
    def shell(self, url: URL, parameters: Sequence[str]) -> Iterator[ShellCommand]:
        psql = find_tool(["psql"], install_hint(None))
        with tool_environment(url) as (env, keep_fds):
            yield ShellCommand([str(psql), *parameters], env, keep_fds)
