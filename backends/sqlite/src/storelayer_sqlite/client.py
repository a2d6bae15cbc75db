"""``storelayer dbshell`` on SQLite: the ``sqlite3`` shell on the database file, else
Python's own ``python -m sqlite3`` (Python 3.12+). A file has no credentials."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from storelayer import BackupError
from storelayer.backend import Client, ShellCommand
from storelayer.backup.tools import find_tool

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: ``python -m sqlite3``, the shell of the standard library, exists from this version.
PYTHON_SHELL = (3, 12)
INSTALL_HINT = (
    "install the SQLite command-line shell (Debian/Ubuntu: apt install sqlite3; "
    "RHEL/Fedora: dnf install sqlite; macOS: brew install sqlite), or run storelayer on "
    "Python 3.12+, whose `python -m sqlite3` is used instead"
)
MEMORY = ("", ":memory:")


def database_argument(url: URL) -> list[str]:
    """The file as an absolute path (never read as an option), none for memory."""
    name = url.database or ""
    return [] if name in MEMORY else [os.path.abspath(name)]


def shell_program(python: tuple[int, int] = sys.version_info[:2]) -> list[str]:
    """``sqlite3`` from the search path, else ``python -m sqlite3`` where it exists."""
    try:
        return [str(find_tool(["sqlite3"], INSTALL_HINT))]
    except BackupError:
        if python < PYTHON_SHELL:
            raise
        return [sys.executable, "-m", "sqlite3"]


class SQLiteClient(Client):
    """The SQLite shell on the database file."""

    @contextmanager
    def shell(self, url: URL, parameters: Sequence[str]) -> Iterator[ShellCommand]:
        program = shell_program()
        yield ShellCommand([*program, *database_argument(url), *parameters], dict(os.environ))
