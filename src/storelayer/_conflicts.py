"""Turning a driver's integrity error into a ``Conflict`` that names the constraint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from storelayer.backend import Backend
from storelayer.errors import Conflict, InvalidValue


def one_line(error: BaseException, secret: str | None = None) -> str:
    """An error's text (the driver's, when wrapped) on one line, ``secret`` masked."""
    text = " ".join(str(getattr(error, "orig", None) or error).split())
    return text.replace(secret, "***") if secret else text


def conflict_from(error: exc.IntegrityError, backend: Backend) -> Conflict:
    """A ``Conflict`` naming the violated constraint when the backend can tell; its
    text is the server's without the data it quotes (``Errors.message``)."""
    name = backend.errors.constraint_name(error)
    where = f" (constraint {name})" if name else ""
    return Conflict(
        f"write violates a constraint{where}: {backend.errors.message(error)}",
        name,
        orig=error.orig,
    )


def invalid_value_from(error: exc.DataError, backend: Backend) -> InvalidValue:
    """An ``InvalidValue`` for a value the database refused, without the value."""
    return InvalidValue(
        f"the database refused a value: {backend.errors.message(error)}; nothing was written"
    )


@contextmanager
def conflicts_raised(backend: Backend) -> Iterator[None]:
    """Re-raise integrity errors of the block as ``Conflict``, refused values as
    ``InvalidValue``."""
    try:
        yield
    except Conflict:
        raise  # already translated (a Conflict is an IntegrityError too)
    except exc.IntegrityError as error:
        raise conflict_from(error, backend) from error
    except exc.DataError as error:
        raise invalid_value_from(error, backend) from error
