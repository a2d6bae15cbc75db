"""The root command group: every storelayer error and usage problem becomes one line.

``storelayer: error: <message>`` on stderr and exit status 2; with ``--debug`` the full
traceback comes first; with ``--json`` the error is also the JSON document on stdout,
``{"error": "<message>", "exit_code": 2}``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
from sqlalchemy import exc as sa_exc

from storelayer._conflicts import one_line
from storelayer.cli.state import CliState
from storelayer.config import mask_url
from storelayer.errors import StorelayerError

PREFIX = "storelayer: error:"


class CliError(click.ClickException):
    """An error shown as one masked line."""

    exit_code = 2
    #: Also print the error as the JSON document on stdout (``--json``).
    as_json = False

    def show(self, file: IO[Any] | None = None) -> None:
        line = " ".join(mask_url(self.format_message()).split())
        click.echo(f"{PREFIX} {line}", file=file, err=file is None)
        if self.as_json:
            click.echo(json.dumps({"error": line, "exit_code": self.exit_code}))


def _usage_message(error: click.ClickException) -> str:
    message = error.format_message()
    ctx = getattr(error, "ctx", None)
    if isinstance(ctx, click.Context):
        message += f" (see '{ctx.command_path} --help')"
    return message


@contextmanager
def one_line_errors(ctx: click.Context | None) -> Iterator[None]:
    """Turn ``StorelayerError`` and click usage errors into a :class:`CliError`."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except CliError as error:
        error.as_json = error.as_json or _wants_json(ctx)
        raise
    except click.ClickException as error:
        raise _cli_error(ctx, _usage_message(error)) from error
    except StorelayerError as error:
        _traceback_if_debug(ctx)
        raise _cli_error(ctx, str(error)) from error
    except sa_exc.SQLAlchemyError as error:  # a database error no storelayer API explained
        _traceback_if_debug(ctx)
        raise _cli_error(
            ctx, f"database error ({type(error).__name__}): {one_line(error)}"
        ) from error


def _wants_json(ctx: click.Context | None) -> bool:
    state = ctx.find_object(CliState) if ctx is not None else None
    return state is not None and state.json


def _cli_error(ctx: click.Context | None, message: str) -> CliError:
    error = CliError(message)
    error.as_json = _wants_json(ctx)
    return error


def _traceback_if_debug(ctx: click.Context | None) -> None:
    state = ctx.find_object(CliState) if ctx is not None else None
    if state is not None and state.debug:
        click.echo(traceback.format_exc().rstrip(), err=True)


class StorelayerGroup(click.Group):
    """A ``click.Group`` whose errors are reported by :func:`one_line_errors`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with one_line_errors(parent):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors(ctx):
            return super().invoke(ctx)
