"""Turning a driver's integrity error into a ``Conflict`` that names the constraint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from storelayer.backend import Backend
from storelayer.errors import Conflict


def one_line(error: BaseException, secret: str | None = None) -> str:
    """An error's text (the driver's, when wrapped) on one line, ``secret`` masked."""
    text = " ".join(str(getattr(error, "orig", None) or error).split())
    return text.replace(secret, "***") if secret else text


def conflict_from(error: exc.IntegrityError, backend: Backend) -> Conflict:
    """A ``Conflict`` naming the violated constraint when the backend can tell."""
    name = backend.errors.constraint_name(error)
    where = f" (constraint {name})" if name else ""
    return Conflict(f"write violates a constraint{where}: {one_line(error)}", name, orig=error.orig)


@contextmanager
def conflicts_raised(backend: Backend) -> Iterator[None]:
    """Re-raise integrity errors of the block as ``Conflict``."""
    try:
        yield
    except Conflict:
        raise  # already translated (a Conflict is an IntegrityError too)
    except exc.IntegrityError as error:
        raise conflict_from(error, backend) from error
