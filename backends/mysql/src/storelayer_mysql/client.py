"""``storelayer dbshell`` on MySQL/MariaDB: the ``mariadb`` (or ``mysql``) client,
whose credentials, host and database come from an option file held in memory only, as
for the backup tools (:func:`storelayer_mysql.backup.option_file_text`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from storelayer.backend import Client, ShellCommand
from storelayer.backup.children import secret_file
from storelayer.backup.tools import find_tool
from storelayer_mysql.backup import HINTS, option_file_text
from storelayer_mysql.hosts import resolved_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: Either client talks to either server for an interactive session.
CLIENTS = ("mariadb", "mysql")


class MySQLClient(Client):
    """``mariadb``/``mysql`` with ``--defaults-extra-file``, the option it needs first."""

    @contextmanager
    def shell(self, url: URL, parameters: Sequence[str]) -> Iterator[ShellCommand]:
        tool = find_tool(CLIENTS, f"{HINTS['mariadb']}; or {HINTS['mysql']}")
        url = resolved_url(url)  # a host list: the node a connection reaches now
        with secret_file("client.cnf", option_file_text(url, url.database)) as options:
            args = [str(tool), f"--defaults-extra-file={options.path}", *parameters]
            yield ShellCommand(args, dict(os.environ), options.keep_fds)
