"""Engine creation shared by the sync and async databases: the backend's tuning, the
connect guard that masks passwords, per-connection setup and the plugin hook."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from storelayer._conflicts import one_line
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.errors import ConnectionFailed, StorelayerError
from storelayer.plugins import PluginManager

#: Execution option read by backends that begin read-only transactions differently.
READ_ONLY_OPTION = "storelayer_read_only"


def engine_options(
    backend: Backend, url: URL, settings: Settings, *, is_async: bool = False
) -> dict[str, Any]:
    """``create_engine`` (or ``create_async_engine``) keyword arguments: the backend's
    tuning, then the user's ``engine_options``; bound parameters hidden from errors and
    logs by default."""
    tuning = backend.async_engine_options if is_async else backend.engine_options
    options = dict(tuning(url, settings))
    options.update(settings.engine_options)
    options.setdefault("hide_parameters", True)
    options.setdefault("echo", settings.echo)
    return options


def instrument(
    engine: Engine, backend: Backend, plugins: PluginManager, url: URL, role: str
) -> None:
    """Attach the connect guard, the backend's setup, and call the plugin hook."""
    _guard_connect(engine, backend, url)
    event.listen(engine, "connect", lambda dbapi_conn, _rec: backend.on_connect(dbapi_conn))
    backend.configure_engine(engine)
    plugins.hook.storelayer_engine_created(engine=engine, backend=backend, role=role)


def _guard_connect(engine: Engine, backend: Backend, url: URL) -> None:
    """Turn a failed connect into one masked line that names the URL and the fix."""

    @event.listens_for(engine, "do_connect")
    def do_connect(dialect: Any, _rec: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            permanent = backend.is_connection_refused_for_good(error)
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
    """Whether retrying a unit of work that raised ``error`` may succeed."""
    if isinstance(error, ConnectionFailed):
        return error.transient
    if isinstance(error, StorelayerError):
        return False
    return backend.is_transient(error)
