"""How storelayer connects to MySQL/MariaDB: pool defaults, the session's strict
``sql_mode``, UTC time zone and patience with a paused stream, timeouts that bound the
whole handshake (PyMySQL and aiomysql bound only the TCP connect), TCP keepalives, and
aware datetimes written as their UTC instant."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from pymysql import converters  # type: ignore[import-untyped]
from pymysql.err import OperationalError  # type: ignore[import-untyped]

from storelayer.backend import TCP_USER_TIMEOUT_MS, connect_timeout_seconds

if TYPE_CHECKING:
    from storelayer import Settings

#: Strict mode: reject (never truncate or zero) bad values, in every storage engine.
SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION"
)

#: Seconds the server waits for a client to take the rows it sends before it drops the
#: connection (``net_write_timeout``, default 60): a stream (a server-side cursor) whose
#: reader pauses longer, on a busy host or to do work between rows, is cut off with
#: "Lost connection to MySQL server during query". Ten minutes for a paused stream.
STREAM_WRITE_TIMEOUT = 600

INIT_COMMAND = (
    f"SET SESSION sql_mode='{SQL_MODE}', time_zone='+00:00', "
    f"net_write_timeout={STREAM_WRITE_TIMEOUT}"
)

#: TCP keepalive probes (idle, interval, count): a dead peer is noticed in about 25 s.
KEEPALIVE = (10, 5, 3)

HANDSHAKE_TIMEOUTS = ("read_timeout", "write_timeout")


def escape_datetime_as_utc(value: dt.datetime, mapping: Any = None) -> str:
    """Write an aware datetime as its UTC instant. PyMySQL would keep the wall-clock time
    and drop the offset, which moves the instant; DATETIME columns hold UTC here (every
    session runs at time_zone '+00:00') and come back naive, meaning UTC."""
    if value.utcoffset() is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    escaped: str = converters.escape_datetime(value, mapping)
    return escaped


#: PyMySQL's conversions, with aware datetimes written as their UTC instant.
CONVERSIONS: Mapping[Any, Any] = {**converters.conversions, dt.datetime: escape_datetime_as_utc}


def connect_args(settings: Settings) -> dict[str, Any]:
    """PyMySQL arguments from ``settings``.

    PyMySQL bounds only the TCP connect by ``connect_timeout``; the handshake that
    follows reads with ``read_timeout`` (default: forever). So both read and write
    timeouts start at ``connect_timeout`` and are lifted once connected.
    """
    seconds = connect_timeout_seconds(settings)
    return {
        "charset": "utf8mb4",
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
        "init_command": INIT_COMMAND,
        "conv": CONVERSIONS,
    }


def lift_handshake_timeouts(dbapi_connection: Any, url_query: Mapping[str, Any]) -> None:
    """Remove the read/write timeouts that bounded the handshake, so that a query may
    run longer than ``connect_timeout``; keep those the URL query asked for.

    PyMySQL has no public setter: it reapplies ``_read_timeout``/``_write_timeout`` to
    the socket before each read/write, so assigning them takes effect at once.
    """
    bound = getattr(dbapi_connection, "connect_timeout", None)
    for key in HANDSHAKE_TIMEOUTS:
        attribute = f"_{key}"
        if key in url_query or bound is None:
            continue
        if getattr(dbapi_connection, attribute, None) == bound:
            setattr(dbapi_connection, attribute, None)


def escape_like_pymysql(connection: Any, value: Any) -> str:
    """A parameter as SQL, the way PyMySQL's ``Connection.escape`` writes it: bytes as a
    hex literal, text by the connection (it knows the session's quoting), the rest
    through ``CONVERSIONS``. aiomysql's own ``escape`` calls PyMySQL's
    ``escape_bytes_prefixed`` for bytes (removed in PyMySQL 1.2.1, a placeholder string
    since 1.2.3: ``'str' object is not callable``) and ignores ``conv`` when escaping."""
    if isinstance(value, bytes | bytearray):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return f"'{connection.escape_string(value)}'"
    escaped: str = converters.escape_item(value, None, CONVERSIONS)
    return escaped


def bounded_async_connect(seconds: float) -> Callable[..., Awaitable[Any]]:
    """``aiomysql.connect`` that gives up after ``seconds`` (handshake included), on a
    connection that escapes parameters with :func:`escape_like_pymysql`."""

    async def connect(*args: Any, **kwargs: Any) -> Any:
        import aiomysql  # type: ignore[import-untyped]

        try:
            connection = await asyncio.wait_for(aiomysql.connect(*args, **kwargs), seconds)
        except asyncio.TimeoutError:
            raise OperationalError(
                2003, f"Can't connect to MySQL server: no handshake within {seconds}s (timeout)"
            ) from None
        connection.escape = partial(escape_like_pymysql, connection)
        return connection

    return connect


def enable_keepalive_probes(dbapi_connection: Any) -> None:
    """Probe an idle TCP connection soon (PyMySQL turns keepalive on with the kernel's
    two-hour default), so a query waiting on a dead network fails in seconds."""
    sock = getattr(dbapi_connection, "_sock", None)
    if not isinstance(sock, socket.socket) or sock.family not in (
        socket.AF_INET,
        socket.AF_INET6,
    ):
        return
    options = ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")
    values = (*KEEPALIVE, TCP_USER_TIMEOUT_MS)
    for option, value in zip(options, values, strict=True):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
