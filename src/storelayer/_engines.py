"""Engine creation shared by the sync and async databases: the backend's tuning, the
connect guard that masks passwords, per-connection setup and the plugin hook."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine

from storelayer._conflicts import one_line
from storelayer._pool import with_measured_pool
from storelayer.backend import READ_ONLY_OPTION as BACKEND_READ_ONLY_OPTION
from storelayer.backend import Backend
from storelayer.backend.commit_markers import no_markers_on
from storelayer.config import Settings, mask_url
from storelayer.errors import ConfigurationError, ConnectionFailed, StorelayerError
from storelayer.plugins import PluginManager

#: Execution option read by backends that begin read-only transactions differently.
READ_ONLY_OPTION = BACKEND_READ_ONLY_OPTION
#: ``Session.info`` key of the backend serving the session.
BACKEND_KEY = "storelayer.backend"
#: ``Session.info`` key set in sessions that run without a transaction.
AUTOCOMMIT_KEY = "storelayer.autocommit"
#: The portable isolation levels of a unit of work, weakest first.
ISOLATION_LEVELS = ("read_committed", "repeatable_read", "serializable")


def isolation_options(backend: Backend, isolation: str | None) -> dict[str, Any]:
    """Execution options of a read-write unit of work at ``isolation`` (a portable
    name; None: the database's default): ``{}`` where the backend's write units give
    that level without a switch (``ops.isolation_levels`` maps it to None)."""
    if isolation is None:
        return {}
    if isolation not in ISOLATION_LEVELS:
        raise ConfigurationError(
            f"isolation={isolation!r} is not an isolation level; use one of "
            f"{', '.join(ISOLATION_LEVELS)} (or None for the database's default)"
        )
    levels = backend.ops.isolation_levels
    if isolation not in levels:
        raise ConfigurationError(
            f"backend {backend.name!r} offers no {isolation!r} isolation; it offers "
            f"{', '.join(levels) or 'none'} (ops.isolation_levels)"
        )
    level = levels[isolation]
    return {} if level is None else backend.ops.isolation_options(level)


def engine_options(
    backend: Backend, url: URL, settings: Settings, *, is_async: bool = False
) -> dict[str, Any]:
    """``create_engine`` (or ``create_async_engine``) keyword arguments: the backend's
    tuning, then the user's ``engine_options``; bound parameters hidden from errors and
    logs by default."""
    tuning = backend.async_engine_options if is_async else backend.engine_options
    options = dict(tuning(url, settings))
    user = dict(settings.engine_options)
    if "connect_args" in user:  # merged: the backend's timeouts and keepalives stay
        user["connect_args"] = {**options.get("connect_args", {}), **user["connect_args"]}
    options.update(user)
    options.setdefault("hide_parameters", True)
    options.setdefault("echo", settings.echo)
    return with_measured_pool(options)


def missing_driver(error: Exception, backend: Backend, url: URL) -> ConfigurationError:
    """The error for a URL whose driver is not installed or not known."""
    driver = url.drivername.partition("+")[2] or backend.default_driver or "its default"
    default = f"{backend.dialect or backend.name}+{backend.default_driver}"
    return ConfigurationError(
        f"cannot load the database driver {driver!r} for {mask_url(url)}: "
        f"{type(error).__name__}: {one_line(error, url.password)}. Install that driver, "
        f"or use the {backend.name} backend's default driver ({default}://...)"
    )


def instrument(
    engine: Engine, backend: Backend, plugins: PluginManager, url: URL, role: str
) -> None:
    """Attach the backend's setup, the connect guard, and call the plugin hook. The
    backend's listeners come first: one that connects by its own means (through a host
    list) answers ``do_connect`` before the guard."""
    backend.configure_engine(engine)
    if role == "replica":
        no_markers_on(engine)  # never create nor write commit markers on a replica
    _guard_connect(engine, backend, url)
    event.listen(engine, "connect", lambda dbapi_conn, _rec: backend.on_connect(dbapi_conn))
    plugins.hook.storelayer_engine_created(engine=engine, backend=backend, role=role)


def _guard_connect(engine: Engine, backend: Backend, url: URL) -> None:
    """Turn a failed connect into one masked line that names the URL and the fix."""

    @event.listens_for(engine, "do_connect")
    def do_connect(dialect: Any, _rec: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            fix = backend.errors.misconfiguration(error)
            if fix is not None:
                raise ConfigurationError(
                    f"cannot connect to {mask_url(url)}: {one_line(error, url.password)}. "
                    f"{fix}"
                ) from None
            permanent = backend.errors.is_connection_refused_for_good(error)
            hint = (
                "check the user, password and database name"
                if permanent
                else "check that the server runs and the host and port are right"
            )
            raise ConnectionFailed(
                f"cannot connect to {mask_url(url)}: {one_line(error, url.password)} ({hint})",
                transient=not permanent,
            ) from None


def is_transient(backend: Backend, error: BaseException) -> bool:
    """Whether retrying a unit of work that raised ``error`` may succeed. A storelayer
    error is transient when it says so (``ConnectionFailed``, injected faults)."""
    if isinstance(error, StorelayerError):
        return bool(getattr(error, "transient", False))
    return backend.errors.is_transient(error)


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` means the connection was lost (SQLAlchemy invalidated it)."""
    if isinstance(error, exc.DBAPIError):
        return bool(error.connection_invalidated)
    return bool(getattr(error, "disconnect", False))
