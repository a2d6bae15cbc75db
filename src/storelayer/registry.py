"""The registry handed to ``storelayer_register_backends``: it validates every backend."""

from __future__ import annotations

import re
from dataclasses import dataclass

from storelayer.backend import Backend, Features
from storelayer.errors import PluginError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Registration:
    """A backend and the plugin that registered it."""

    backend: Backend
    plugin: str


class BackendRegistry:
    """Collects backends; rejects malformed ones and duplicate names with a clear error.

    Two backends may claim one scheme: that is reported when a URL with the scheme is
    resolved, so that ``STORELAYER_BACKEND`` can still pick one of them.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, Registration] = {}
        self._plugin = "<unknown>"

    def bind(self, plugin: str) -> BackendRegistry:
        """Attribute what is registered next to ``plugin``."""
        self._plugin = plugin
        return self

    def __call__(self, backend: Backend) -> None:
        """Register ``backend`` for the plugin currently bound."""
        _validate(backend, self._plugin)
        previous = self._by_name.get(backend.name)
        if previous is not None:
            raise PluginError(
                f"plugin {self._plugin!r} registers backend {backend.name!r}, which plugin "
                f"{previous.plugin!r} already registered; rename one of them"
            )
        self._by_name[backend.name] = Registration(backend, self._plugin)

    add = __call__

    def registrations(self) -> list[Registration]:
        """Everything registered, sorted by backend name."""
        return [self._by_name[name] for name in sorted(self._by_name)]

    def get(self, name: str) -> Registration | None:
        """The registration of backend ``name``, if any."""
        return self._by_name.get(name)

    def claiming(self, scheme: str) -> list[Registration]:
        """The registrations whose backend serves URL scheme ``scheme``."""
        return [r for r in self.registrations() if scheme in r.backend.schemes]


def _validate(backend: object, plugin: str) -> None:
    where = f"plugin {plugin!r}"
    if not isinstance(backend, Backend):
        raise PluginError(
            f"{where} registered {backend!r}, which is not a storelayer.Backend instance"
        )
    if not _NAME.match(backend.name or ""):
        raise PluginError(
            f"{where} registered a backend named {backend.name!r}: a name is lowercase "
            "letters, digits and underscores, starting with a letter"
        )
    schemes = backend.schemes
    if (
        not isinstance(schemes, tuple)
        or not schemes
        or not all(isinstance(s, str) and _NAME.match(s) for s in schemes)
    ):
        raise PluginError(
            f"{where}: backend {backend.name!r} must declare schemes as a non-empty tuple "
            f"of lowercase names such as ('postgresql',), got {schemes!r}"
        )
    if not isinstance(backend.features, Features):
        raise PluginError(
            f"{where}: backend {backend.name!r} features must be a storelayer.Features"
        )
