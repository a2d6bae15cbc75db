"""Settings from ``DATABASE_URL`` and ``STORELAYER_*``; keyword arguments win.

Passwords never leave this module unmasked: use :func:`mask_url` for anything shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from storelayer.errors import ConfigurationError

DEFAULT_URL = "sqlite:///./storelayer.db"
DEFAULT_MAX_REPLICA_LAG = 5.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_HEALTH_TIMEOUT = 5.0
DEFAULT_SLOW_STATEMENT_MS = 500.0

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")
# "user:password@host" pasted without a scheme (only looked for when there is no "://").
_PASSWORD_WITHOUT_SCHEME = re.compile(
    r"(?P<head>(?:^|[\s'\"(=])[^:/@\s'\"]*:)(?P<password>[^@\s]*)(?P<tail>@)"
)
#: ``pooler=`` values: the pooling mode of a connection pooler (PgBouncer) between
#: storelayer and the server; None (or "none"): connected to the server itself.
POOLERS = ("session", "transaction")
#: "scheme://[userinfo@]h1[:p1],h2[:p2][/db][?query]": a host list in libpq's form.
_HOST_LIST = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^@/?#]*@)?"
    r"(?P<hosts>[^/?#@]*,[^/?#@]*)(?P<rest>[/?].*)?$"
)
_HOST_AND_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(:\d+)?$")
#: A comma that starts the next URL of DATABASE_REPLICA_URLS (host lists hold commas).
_NEXT_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.\-]*://)")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***``; works on malformed text."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    masked = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)
    if "://" not in url:
        masked = _PASSWORD_WITHOUT_SCHEME.sub(r"\g<head>***\g<tail>", masked)
    return masked


def parse_url(text: str | URL, *, source: str = "DATABASE_URL") -> URL:
    """Parse a database URL, with an error that names ``source`` and hides the password.

    A host list in libpq's form (``postgresql://user@h1:5432,h2:5433/db``, as
    ``pg_autoctl show uri`` prints it; ``mysql://h1,h2/db`` alike) becomes SQLAlchemy's
    form: no host or port, and the hosts in order as ``?host=h1:5432&host=h2:5433``."""
    if isinstance(text, URL):
        return text
    text = text.strip()
    try:
        return _host_list_url(text) or make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"{source} is not a database URL: {mask_url(text)!r}. Expected a form like "
            "'postgresql://user:password@host:5432/dbname', 'mysql://user@host/dbname' "
            "or 'sqlite:///path/to/file.db'"
        ) from exc


def _host_list_url(text: str) -> URL | None:
    """``text`` parsed when its authority names several hosts, else None."""
    found = _HOST_LIST.match(text)
    if found is None:
        return None
    hosts = [h.strip() for h in found["hosts"].split(",")]
    if not all(_HOST_AND_PORT.match(h) for h in hosts):
        raise ValueError("a host list names host or host:port entries, comma-separated")
    base = make_url(f"{found['scheme']}://{found['userinfo'] or ''}{found['rest'] or ''}")
    given = base.query.get("host", ())
    given = (given,) if isinstance(given, str) else tuple(given)
    return base.set(query={**base.query, "host": (*hosts, *given)})


def url_hosts(url: URL) -> list[tuple[str, int | None]]:
    """The servers ``url`` names, in order: its ``?host=h[:p]`` entries (a host list),
    else its host and port; ``[]`` when it names none (a local socket)."""
    listed = url.query.get("host", ())
    listed = (listed,) if isinstance(listed, str) else tuple(listed)
    if not listed:
        return [(url.host, url.port)] if url.host else []
    hosts = []
    for entry in listed:
        host, port = _split_host(entry)
        hosts.append((host, port if port is not None else url.port))
    return hosts


def is_host_list(url: URL) -> bool:
    """Whether ``url`` names more than one server."""
    return len(url_hosts(url)) > 1


def _split_host(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [IPv6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port) if port else None
    return entry, None


@dataclass(frozen=True)
class Settings:
    """Everything ``connect()`` needs. Build it with :meth:`from_env`."""

    url: URL
    replica_urls: tuple[URL, ...] = ()
    backend: str | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_timeout: float | None = None
    pool_recycle: int | None = None
    max_replica_lag: float = DEFAULT_MAX_REPLICA_LAG
    echo: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    statement_timeout: float | None = None
    application_name: str = "storelayer"
    #: Ping a pooled connection at checkout when it sat idle this many seconds
    #: (0: every checkout). STORELAYER_PING_AFTER.
    ping_after: float = 1.0
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    #: Processes expected to run this configuration (for the pool-vs-server check).
    processes: int = 1
    #: Seconds a health check may take per engine.
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    #: Statements slower than this (milliseconds) are logged and kept in metrics.
    slow_statement_ms: float = DEFAULT_SLOW_STATEMENT_MS
    #: A pooler between storelayer and the server: "transaction" (PgBouncer's
    #: transaction mode), "session", or None. STORELAYER_POOLER.
    pooler: str | None = None

    @classmethod
    def from_env(
        cls, url: str | URL | None = None, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Settings:
        """Read the environment, then apply ``url`` and keyword arguments on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "url": parse_url(
                url if url is not None else env.get("DATABASE_URL") or DEFAULT_URL,
                source="the url argument" if url is not None else "DATABASE_URL",
            ),
            "replica_urls": _replicas(env.get("DATABASE_REPLICA_URLS", "")),
            "backend": env.get("STORELAYER_BACKEND") or None,
            "pool_size": _number(env, "STORELAYER_POOL_SIZE", int),
            "max_overflow": _number(env, "STORELAYER_MAX_OVERFLOW", int),
            "pool_timeout": _number(env, "STORELAYER_POOL_TIMEOUT", float),
            "pool_recycle": _number(env, "STORELAYER_POOL_RECYCLE", int),
            "max_replica_lag": _number(env, "STORELAYER_MAX_REPLICA_LAG", float)
            or DEFAULT_MAX_REPLICA_LAG,
            "echo": _flag(env, "STORELAYER_ECHO"),
            "ping_after": _number(env, "STORELAYER_PING_AFTER", float, default=1.0),
            "processes": _number(env, "STORELAYER_PROCESSES", int) or 1,
            "health_timeout": _number(env, "STORELAYER_HEALTH_TIMEOUT", float)
            or DEFAULT_HEALTH_TIMEOUT,
            "slow_statement_ms": _number(env, "STORELAYER_SLOW_STATEMENT_MS", float)
            or DEFAULT_SLOW_STATEMENT_MS,
            "pooler": env.get("STORELAYER_POOLER") or None,
        }
        if "replicas" in kwargs:
            kwargs["replica_urls"] = tuple(
                parse_url(r, source="replicas") for r in kwargs.pop("replicas") or ()
            )
        unknown = set(kwargs) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(
                f"unknown connect() argument(s): {', '.join(sorted(unknown))}. Valid: "
                f"{', '.join(sorted(f for f in cls.__dataclass_fields__ if f != 'url'))}"
            )
        values.update({k: v for k, v in kwargs.items() if v is not None})
        values["pooler"] = _pooler(values["pooler"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject impossible numbers with the name of the setting."""
        checks = {
            "pool_size (STORELAYER_POOL_SIZE)": (self.pool_size, 1),
            "max_overflow (STORELAYER_MAX_OVERFLOW)": (self.max_overflow, 0),
            "pool_timeout (STORELAYER_POOL_TIMEOUT)": (self.pool_timeout, 0),
            "pool_recycle (STORELAYER_POOL_RECYCLE)": (self.pool_recycle, -1),
            "connect_timeout": (self.connect_timeout, 0),
            "processes (STORELAYER_PROCESSES)": (self.processes, 1),
            "health_timeout (STORELAYER_HEALTH_TIMEOUT)": (self.health_timeout, 0),
            "slow_statement_ms (STORELAYER_SLOW_STATEMENT_MS)": (self.slow_statement_ms, 0),
        }
        for name, (value, minimum) in checks.items():
            if value is not None and value < minimum:
                raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")

    def with_url(self, url: URL) -> Settings:
        """A copy for another engine (a replica, a scratch database)."""
        return replace(self, url=url)

    def pool_overrides(self) -> dict[str, Any]:
        """The pool settings the user set explicitly, as ``create_engine`` arguments."""
        chosen = {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
            "pool_recycle": self.pool_recycle,
        }
        return {k: v for k, v in chosen.items() if v is not None}

    def __repr__(self) -> str:
        replicas = [mask_url(u) for u in self.replica_urls]
        return (
            f"Settings(url={mask_url(self.url)!r}, replicas={replicas}, backend={self.backend!r})"
        )


def _pooler(value: str | None) -> str | None:
    if value is None or value.strip().lower() in ("", "none"):
        return None
    mode = value.strip().lower()
    if mode not in POOLERS:
        raise ConfigurationError(
            f"pooler (STORELAYER_POOLER) must be one of {', '.join(POOLERS)} or none, got "
            f"{value!r}: name the pool_mode of the pooler in front of the server"
        )
    return mode


def _replicas(text: str) -> tuple[URL, ...]:
    parts: Sequence[str] = [p for p in (s.strip(" ,") for s in _NEXT_URL.split(text)) if p]
    return tuple(parse_url(p, source="DATABASE_REPLICA_URLS") for p in parts)


def _number(
    env: Mapping[str, str], name: str, kind: type[int] | type[float], default: Any = None
) -> Any:
    raw = env.get(name, "").strip()
    return parse_number(name, raw, kind) if raw else default


def parse_number(name: str, raw: str, kind: type[int] | type[float]) -> Any:
    """``raw``, the value of variable ``name``, as an ``int`` or ``float``."""
    try:
        return kind(raw)
    except ValueError:
        expected = "a whole number" if kind is int else "a number"
        raise ConfigurationError(f"{name} must be {expected}, got {raw!r}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return parse_flag(name, env.get(name, ""))


def parse_flag(name: str, raw: str) -> bool:
    """``raw``, the value of variable ``name``, as a boolean (empty: false)."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")
