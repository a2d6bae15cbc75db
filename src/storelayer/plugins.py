"""Plugin discovery: entry points of group ``storelayer``, loaded lazily and once.

A plugin that fails to import or to register is recorded as broken and skipped; the
others keep working. ``STORELAYER_LOAD_PLUGINS`` (allow-list) and
``STORELAYER_DISABLE_PLUGINS`` (block-list) take comma-separated plugin or distribution
names.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from storelayer import hookspecs
from storelayer._markers import PROJECT_NAME
from storelayer.backend import Backend
from storelayer.errors import BackendNotFound, ConfigurationError
from storelayer.registry import BackendRegistry

ENTRY_POINT_GROUP = "storelayer"

#: What to install for the schemes of the bundled backends. Data only: the core never
#: imports a backend package.
INSTALL_HINTS: Mapping[str, str] = {
    "postgresql": "storelayer-postgresql (pip install 'storelayer[postgresql]')",
    "postgres": "storelayer-postgresql (pip install 'storelayer[postgresql]')",
    "mysql": "storelayer-mysql (pip install 'storelayer[mysql]')",
    "mariadb": "storelayer-mysql (pip install 'storelayer[mysql]')",
    "sqlite": "storelayer-sqlite (pip install storelayer-sqlite)",
}


@dataclass
class PluginInfo:
    """What ``storelayer plugins`` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    backends: list[str] = field(default_factory=list)
    schemes: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded | broken | disabled
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return dict(self.__dict__)


def _names(text: str | None) -> set[str] | None:
    if text is None:
        return None
    return {n.strip().lower() for n in text.split(",") if n.strip()}


EntryPointSource = Callable[[], Iterable[metadata.EntryPoint]]


def _installed_entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


class PluginManager:
    """Owns the pluggy manager and the backend registry. Thread-safe lazy loading."""

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        entry_points: EntryPointSource = _installed_entry_points,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.hook_manager = pluggy.PluginManager(PROJECT_NAME)
        self.hook_manager.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._entry_points = entry_points
        env = os.environ if environ is None else environ
        self._allow = _names(env.get("STORELAYER_LOAD_PLUGINS"))
        self._block = _names(env.get("STORELAYER_DISABLE_PLUGINS")) or set()
        self._infos: dict[str, PluginInfo] = {}
        self._registry: BackendRegistry | None = None
        self._lock = threading.RLock()

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``pm.hook.storelayer_engine_created(...)``)."""
        return self.hook_manager.hook

    # -- registration -----------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or module directly (tests, applications)."""
        with self._lock:
            plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
            self.hook_manager.register(plugin, name=plugin_name)
            self._infos[plugin_name] = PluginInfo(name=plugin_name)
            self._registry = None
            return plugin_name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered with :meth:`register`."""
        with self._lock:
            self.hook_manager.unregister(name=name)
            self._infos.pop(name, None)
            self._registry = None

    def _load(self) -> BackendRegistry:
        with self._lock:
            if self._registry is None:
                if self._load_entry_points:
                    self._load_entry_points = False
                    for ep in self._entry_points():
                        self._load_one(ep)
                self._registry = self._collect_backends()
            return self._registry

    def _load_one(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        self._infos[ep.name] = info
        keys = {ep.name.lower(), (info.distribution or "").lower()}
        if (self._allow is not None and not keys & self._allow) or keys & self._block:
            info.status = "disabled"
            return
        try:
            plugin = ep.load()
            self.hook_manager.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the process down
            info.status, info.error = "broken", f"{type(exc).__name__}: {exc}"

    def _collect_backends(self) -> BackendRegistry:
        registry = BackendRegistry()
        for info in self._infos.values():
            info.backends, info.schemes = [], []
            if info.status == "broken" and info.error and info.error.startswith("register: "):
                info.status, info.error = "loaded", None
        for impl in self.hook.storelayer_register_backends.get_hookimpls():
            info = self._infos.setdefault(impl.plugin_name, PluginInfo(name=impl.plugin_name))
            try:
                impl.function(register=registry.bind(impl.plugin_name))
            except Exception as exc:
                info.status, info.error = "broken", f"register: {type(exc).__name__}: {exc}"
        for reg in registry.registrations():
            info = self._infos[reg.plugin]
            info.backends.append(reg.backend.name)
            info.schemes.extend(reg.backend.schemes)
        return registry

    # -- queries ----------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, sorted by name."""
        self._load()
        return [self._infos[name] for name in sorted(self._infos)]

    def backends(self) -> dict[str, Backend]:
        """The registered backends by name."""
        return {r.backend.name: r.backend for r in self._load().registrations()}

    def plugin_of(self, backend: Backend) -> PluginInfo | None:
        """The plugin that registered ``backend``."""
        reg = self._load().get(backend.name)
        return self._infos.get(reg.plugin) if reg else None

    def resolve(self, scheme: str, backend: str | None = None) -> Backend:
        """The backend for URL scheme ``scheme`` (``postgresql+psycopg2`` works too), or
        the one named ``backend`` when given."""
        registry = self._load()
        scheme = scheme.partition("+")[0].lower()
        if backend:
            reg = registry.get(backend)
            if reg is None:
                raise BackendNotFound(
                    f"backend {backend!r} (from STORELAYER_BACKEND or backend=) is not "
                    f"registered; registered backends: {', '.join(self.backends()) or 'none'}"
                )
            return reg.backend
        claims = registry.claiming(scheme)
        if len(claims) == 1:
            return claims[0].backend
        if claims:
            names = ", ".join(f"{c.backend.name!r} (plugin {c.plugin!r})" for c in claims)
            raise ConfigurationError(
                f"URL scheme {scheme!r} is claimed by several backends: {names}. Choose one "
                "with STORELAYER_BACKEND=<name> or connect(backend=<name>)"
            )
        raise BackendNotFound(self._not_found_message(scheme))

    def _not_found_message(self, scheme: str) -> str:
        message = f"no backend serves URL scheme {scheme!r}"
        hint = INSTALL_HINTS.get(scheme)
        problem = next(
            (
                i
                for i in self._infos.values()
                if i.status != "loaded" and hint and (i.distribution or i.name) in hint
            ),
            None,
        )
        if problem is not None:
            detail = problem.error or "listed in STORELAYER_DISABLE_PLUGINS/LOAD_PLUGINS"
            return f"{message}: its plugin {problem.name!r} is {problem.status} ({detail})"
        if hint:
            return f"{message}: install {hint}"
        served = sorted({s for r in self._load().registrations() for s in r.backend.schemes})
        return (
            f"{message}. Installed backends serve: {', '.join(served) or 'nothing'}; "
            "a third-party plugin may provide it"
        )


_default: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginManager()
        return _default
