"""What killed runs leave behind, and the pass that removes it.

On this host: scratch directories and partial artifacts named after their owner process
(:func:`~storelayer.backup.children.remove_stale`). On a database server: staging and
scratch databases named ``storelayer_<kind>_<host>_<pid>_<unix time>_<random>`` (the
host as a short hash of its name), so a later run can tell whose they are and when they
were made. A backend's ``Backend.backups`` may offer ``prune_stale(engine)``, returning
the names it dropped (the bundled server backends do): it drops the databases of that
form on the engine's server whose owner is gone (:func:`owner_gone`) and that no
session uses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from storelayer.backup.children import owner_alive, remove_stale
from storelayer.errors import StorelayerError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Backend

logger = logging.getLogger(__name__)
#: This host, as it appears in the names of server leftovers.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
#: ``LIKE`` pattern of every server leftover's name (``_`` escaped).
LEFTOVER_PATTERN = "storelayer\\_%"
_NAME = re.compile(
    r"^storelayer_(?P<kind>[a-z]+)_(?P<host>[0-9a-f]{6})_(?P<pid>\d+)_(?P<time>\d+)_[0-9a-f]+$"
)


def server_scratch_name(kind: str) -> str:
    """A new database name for ``kind`` (``restore``, ``verify``) owned by this process:
    at most 53 characters, within every server's limit."""
    return f"storelayer_{kind}_{HOST}_{os.getpid()}_{int(time.time())}_{secrets.token_hex(4)}"


def owner_gone(name: str) -> bool:
    """Whether ``name`` is a server leftover made on this host by a process that no
    longer runs. Names from other hosts are never judged here: their host can."""
    found = _NAME.match(name)
    return bool(found and found["host"] == HOST and not owner_alive(int(found["pid"])))


def prune_server(backend: Backend, engine: Engine) -> list[str]:
    """Drop the stale leftovers on ``engine``'s server, if the backend can find them;
    a failure is logged, never raised (pruning must not stop a backup)."""
    prune = getattr(backend.backups, "prune_stale", None)
    if prune is None:
        return []
    try:
        return list(prune(engine))
    except (SQLAlchemyError, StorelayerError) as error:
        logger.warning("could not remove stale storelayer databases: %s", error)
        return []


def prune_local(directories: Iterable[Path | None]) -> list[str]:
    """Remove stale scratch directories and partial artifacts from the temporary
    directory and from each of ``directories``."""
    seen: set[Path | None] = {None}
    removed = [str(p) for p in remove_stale()]
    for directory in directories:
        if directory not in seen:
            seen.add(directory)
            removed += [str(p) for p in remove_stale(directory)]
    return removed
