"""Ordered host lists for MySQL/MariaDB (``mysql://user@h1:3306,h2:3306/db``, or
``?host=h1:3306&host=h2:3306``), which the drivers do not know: each new connection goes
to the first host that accepts it and can take writes (not ``read_only``; on Galera, a
ready and synced member of the primary component), like libpq's
``target_session_attrs=read-write``. An error that means "this node cannot serve now"
(a Galera node cut off from the cluster answers 1047; a server that turned read-only)
drops the pool's connections, so that the retried unit of work connects anew."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, pool

from storelayer.config import mask_url, url_hosts
from storelayer.errors import ConnectionFailed
from storelayer_mysql.galera import is_wsrep_error, node_problem

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine, ExceptionContext

DEFAULT_PORT = 3306
#: A write refused because the server runs read-only.
READ_ONLY_CODES = frozenset({1290, 1792})


def has_host_list(engine: Engine) -> bool:
    """Whether the engine's URL names its hosts as a list (``?host=``)."""
    return "host" in engine.url.query


def connect_to_a_writable_host(engine: Engine) -> None:
    """Connect through the engine's host list in order, skipping hosts that refuse or
    cannot take writes; make node-level errors drop the pool's connections. (Listening
    before storelayer's connect guard, which then never sees a host list.)"""
    if not has_host_list(engine):
        return
    hosts = [(host, port or DEFAULT_PORT) for host, port in url_hosts(engine.url)]

    @event.listens_for(engine, "do_connect")
    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        answers = []
        for host, port in hosts:
            params = {**cparams, "host": host, "port": port}
            try:
                connection = dialect.connect(*cargs, **params)
            except Exception as error:
                answers.append(f"{host}:{port}: {type(error).__name__} {error.args[:1]}")
                continue
            try:
                problem = node_problem(connection)
            except Exception as error:
                problem = f"{type(error).__name__} {error.args[:1]}"
            if problem is None:
                return connection
            answers.append(f"{host}:{port}: {problem}")
            with contextlib.suppress(Exception):
                connection.close()
        raise ConnectionFailed(
            f"cannot connect to {mask_url(engine.url)}: no host of the list can take writes "
            f"now ({'; '.join(answers)}); check that the servers run and a node is a "
            "writable, synced member",
            transient=True,
        )

    event.listen(engine, "handle_error", _move_off_a_node_that_cannot_serve)


def served_url(engine: Engine) -> URL:
    """The engine's URL naming the one server a new connection reaches now: for a host
    list, the first that takes writes (what the dump tools, which take one host, must
    reach); the URL itself otherwise."""
    if not has_host_list(engine):
        return engine.url
    with engine.connect() as connection:
        raw: Any = connection.connection.dbapi_connection
        host, port = raw.host, raw.port
    query = {k: v for k, v in engine.url.query.items() if k != "host"}
    return engine.url.set(host=host, port=port, query=query)


def resolved_url(url: URL) -> URL:
    """:func:`served_url` for a URL without an engine (the interactive client)."""
    if "host" not in url.query:
        return url
    engine = create_engine(url, poolclass=pool.NullPool)
    connect_to_a_writable_host(engine)
    try:
        return served_url(engine)
    finally:
        engine.dispose()


def _move_off_a_node_that_cannot_serve(context: ExceptionContext) -> None:
    original = context.original_exception
    args = getattr(original, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    message = str(args[-1]) if args else ""
    if is_wsrep_error(code, message) or code in READ_ONLY_CODES:
        context.is_disconnect = True
