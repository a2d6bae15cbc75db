"""What the global options decide, shared by every command through the click context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from storelayer.config import parse_url
from storelayer.database import Database, connect

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """The global options: where to connect, and how to talk to the user."""

    url: str | None = None
    backend: str | None = None
    json: bool = False
    debug: bool = False

    def connect(self) -> Database:
        """Open the configured database; ``--url``/``--backend`` win over the environment.

        No connection is made until a command needs one."""
        url = parse_url(self.url, source="--url") if self.url is not None else None
        return connect(url, backend=self.backend)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).json = True


def json_option(command: F) -> F:
    """``--json`` on a subcommand too, so ``storelayer info --json`` works like
    ``storelayer --json info``."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print one JSON document instead of text.",
    )(command)
