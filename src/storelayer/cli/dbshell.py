"""``storelayer dbshell``: the database's own client (``sqlite3``, ``psql``,
``mariadb``/``mysql``) on the configured database.

The backend builds the command (``Backend.client``): credentials reach the client
through its environment or a 0600 in-memory file, never its command line. On POSIX
storelayer then becomes the client (``exec``), so the terminal, Ctrl-C and the exit
status are the client's own and no storelayer process waits beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import NoReturn

import click

from storelayer.backend import ShellCommand
from storelayer.cli.group import CliError
from storelayer.cli.state import CliState, pass_state

#: storelayer's own variables that may hold a password: the client does not inherit them.
URL_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URLS")


def become(command: ShellCommand) -> NoReturn:
    """Replace this process with the client (its credential descriptors inherited);
    where ``exec`` is not the way (Windows), run it and exit with its status."""
    env = {k: v for k, v in command.env.items() if k not in URL_VARIABLES}
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        for fd in command.keep_fds:
            os.set_inheritable(fd, True)
        os.execve(command.args[0], command.args, env)  # noqa: S606 - no shell
    done = subprocess.run(command.args, env=env, check=False)  # pragma: no cover
    sys.exit(done.returncode)  # pragma: no cover


@click.command(
    "dbshell", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("parameters", nargs=-1, type=click.UNPROCESSED)
@pass_state
def dbshell_command(state: CliState, parameters: tuple[str, ...]) -> None:
    """Run the database's own client (sqlite3, psql, mariadb) on the configured database.

    PARAMETERS go to the client as they are, e.g. `storelayer dbshell -- -c "SELECT 1"`
    (psql). The password reaches the client through its environment or an in-memory
    0600 file, never its command line; give the URL in DATABASE_URL (which the client
    does not inherit) rather than --url, which is on storelayer's command line."""
    db = state.connect()
    backend, url = db.backend, db.url
    db.dispose()
    try:
        shell = backend.client.shell(url, parameters)
    except NotImplementedError:
        raise CliError(
            f"backend {backend.name!r} names no command-line client: its plugin sets none "
            "(Backend.client); use the database's own tools"
        ) from None
    with shell as command:
        become(command)
