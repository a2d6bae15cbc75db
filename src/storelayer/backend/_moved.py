"""Old ``Backend`` members that moved to a concern object keep working, with a
``DeprecationWarning``: a call of an old name (``backend.is_transient(exc)``) goes to
``Backend.__getattr__``; a subclass that overrides old names gets them wired into its
concerns by ``BackendType``, and its ``super()`` calls reach the concern's own members.
Nothing here counts as a member of ``Backend``; delete the module with the old names."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storelayer.backend import Backend

#: Old ``Backend`` member -> where it lives now. The old names keep working, with a
#: ``DeprecationWarning``, whether code calls them or a subclass overrides them.
MOVED_MEMBERS: Mapping[str, str] = {
    "is_transient": "errors.is_transient",
    "is_connection_refused_for_good": "errors.is_connection_refused_for_good",
    "is_read_only_error": "errors.is_read_only",
    "constraint_name": "errors.constraint_name",
    "upsert": "ops.upsert",
    "bulk_upsert": "ops.bulk_upsert",
    "bulk_insert": "ops.bulk_insert",
    "reset_sequences": "ops.reset_sequences",
    "server_version": "ops.server_version",
    "server_limits": "ops.server_limits",
    "replica_lag": "replication.lag",
    "replica_pool_options": "replication.pool_options",
    "write_position": "replication.write_position",
    "has_replayed": "replication.has_replayed",
    "backup": "backups.backup",
    "restore": "backups.restore",
    "inspect_backup": "backups.inspect",
    "create_database": "provisioning.create_database",
    "drop_database": "provisioning.drop_database",
    "embedded_test_url": "provisioning.embedded_test_url",
    "migration_lock": "migrations.lock",
}


class _Rerouted:
    """Base of a concern copied for one backend whose class overrides old names."""


class _Reroute:
    """``Backend.<attr>`` on a subclass that overrides some of the concern's members
    under their old names (``members``: new name -> old name): each backend gets a copy
    of the concern whose members call those overrides."""

    def __init__(self, attr: str, concern: Any, members: dict[str, str]) -> None:
        self.attr, self.concern, self.members = attr, concern, members

    def __get__(self, backend: Backend | None, owner: type | None = None) -> Any:
        if backend is None:
            return self.concern
        base, state = type(self.concern), dict(getattr(self.concern, "__dict__", {}))
        if isinstance(self.concern, ModuleType):  # backups = the plugin's backup module
            functions = {k: staticmethod(v) for k, v in state.items() if callable(v)}
            base, state = type(self.concern.__name__, (), functions), {}
        copy: Any = object.__new__(type(f"Rerouted{base.__name__}", (base, _Rerouted), {}))
        state.update({new: getattr(backend, old) for new, old in self.members.items()})
        vars(copy).update(state)
        vars(backend)[self.attr] = copy  # once per backend
        return copy


def _old_member(old: str) -> Callable[..., Any]:
    attr, _, member = MOVED_MEMBERS[old].partition(".")

    def call(self: Backend, *args: Any, **kwargs: Any) -> Any:
        concern = getattr(self, attr)
        if isinstance(concern, _Rerouted):  # its own member, not the override calling us
            concern = super(type(concern), concern)
        return getattr(concern, member)(*args, **kwargs)

    return call


#: The extra base of a subclass that overrides old names: its ``super()`` calls
#: (``super().is_transient(exc)``) reach the concern's own member.
_OldMembers = type("_OldMembers", (), {old: _old_member(old) for old in MOVED_MEMBERS})


class BackendType(type):
    """Wires the old-style overrides of a subclass into its concerns (``MOVED_MEMBERS``),
    with a DeprecationWarning."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> BackendType:
        old = sorted(namespace.keys() & MOVED_MEMBERS.keys())
        if old and not any(issubclass(base, _OldMembers) for base in bases):
            bases = (*bases, _OldMembers)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if old:
            moves = ", ".join(f"{n} -> {MOVED_MEMBERS[n]}" for n in old)
            warnings.warn(
                f"{name} overrides Backend members that moved to concern objects: {moves}",
                DeprecationWarning,
                stacklevel=2,
            )
        for n in old:
            attr, _, member = MOVED_MEMBERS[n].partition(".")
            reroute = vars(cls).get(attr)
            if not isinstance(reroute, _Reroute):
                inherited = inspect.getattr_static(cls, attr)
                members = dict(inherited.members) if isinstance(inherited, _Reroute) else {}
                reroute = _Reroute(attr, getattr(cls, attr), members)
                setattr(cls, attr, reroute)
            reroute.members[member] = n
        return cls


def moved_member(backend: Backend, name: str) -> Any:
    """``backend.<name>`` for an old name: the concern's member, with a warning."""
    moved = MOVED_MEMBERS.get(name)
    if moved is None:
        raise AttributeError(f"{type(backend).__name__!r} object has no attribute {name!r}")
    warnings.warn(f"Backend.{name} is now Backend.{moved}", DeprecationWarning, stacklevel=3)
    concern, _, member = moved.partition(".")
    return getattr(getattr(backend, concern), member)
