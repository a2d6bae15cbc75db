"""Every hook a storelayer plugin can implement, and what the hooks are given that is
storelayer's own (``MetricsEvent``). Hooks are prefixed ``storelayer_``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from storelayer._markers import hookspec

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Backend
    from storelayer.registry import BackendRegistry


@dataclass(frozen=True)
class MetricsEvent:
    """One thing that happened on an engine, as an exporter hears it."""

    #: ``"statement"``, ``"error"``, ``"retry"``, ``"slow_statement"`` or ``"checkout"``.
    kind: str
    #: The engine: ``"primary"``, ``"replica:0"``...
    role: str
    #: Duration in seconds (statements), when it has one.
    seconds: float | None = None
    #: SQL text with literals redacted (statements), when it has one.
    statement: str | None = None
    #: The error's class name (errors, retries); never its message, which may hold data.
    error: str | None = None
    #: Whether the error meant a lost connection.
    disconnect: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@hookspec
def storelayer_register_backends(register: BackendRegistry) -> None:
    """Register the backends this plugin provides.

    :param register: the registry; call ``register(backend)`` once per backend. It rejects
        duplicate names, claimed schemes and malformed backends with a ``PluginError``.
    """


@hookspec
def storelayer_engine_created(engine: Engine, backend: Backend, role: str) -> None:
    """Called after storelayer created an engine, before it is used.

    :param engine: the new SQLAlchemy engine.
    :param backend: the backend that tuned it.
    :param role: ``"primary"`` or ``"replica"``.
    """


@hookspec
def storelayer_backup_created(manifest: dict[str, Any], path: str) -> None:
    """Called after a backup artifact was written and verified.

    :param manifest: the artifact's manifest (no credentials in it).
    :param path: where the artifact was written.
    """


@hookspec
def storelayer_metrics_event(event: MetricsEvent) -> None:
    """Called for every statement, error, retry and slow statement of every engine, so
    that an exporter (OpenTelemetry, Prometheus...) can record them. Keep it fast: it
    runs on the thread that executed the statement. An exception it raises is logged
    once and otherwise ignored.

    :param event: what happened; its SQL text has literals redacted and its error names
        only the class, so no parameter, value or password reaches an exporter.
    """
