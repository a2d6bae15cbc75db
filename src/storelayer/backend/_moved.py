"""``Backend`` members that moved to a concern object keep their old names, with a
``DeprecationWarning``: calling one (``backend.is_transient(exc)``) reaches the concern's
member through ``Backend.__getattr__``; a subclass that overrides one has it wired into
its concern by ``BackendType``, its ``super()`` calls included. None of this is a member
of ``Backend``; it goes when the old names go."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storelayer.backend import Backend

#: Old ``Backend`` member -> where it lives now.
MOVED_MEMBERS: dict[str, str] = {
    **{n: f"errors.{n}" for n in ("is_transient", "is_connection_refused_for_good")},
    "constraint_name": "errors.constraint_name",
    "is_read_only_error": "errors.is_read_only",
    **{n: f"ops.{n}" for n in ("upsert", "bulk_upsert", "bulk_insert", "reset_sequences")},
    **{n: f"ops.{n}" for n in ("server_version", "server_limits")},
    "replica_lag": "replication.lag",
    "replica_pool_options": "replication.pool_options",
    **{n: f"replication.{n}" for n in ("write_position", "has_replayed")},
    **{n: f"backups.{n}" for n in ("backup", "restore")},
    "inspect_backup": "backups.inspect",
    **{n: f"provisioning.{n}" for n in ("create_database", "drop_database")},
    "embedded_test_url": "provisioning.embedded_test_url",
    "migration_lock": "migrations.lock",
}


def moved_member(backend: Backend, name: str) -> Any:
    """``backend.<name>`` for an old name: the concern's member, with a warning."""
    moved = MOVED_MEMBERS.get(name)
    if moved is None:
        raise AttributeError(f"{type(backend).__name__!r} object has no attribute {name!r}")
    warnings.warn(f"Backend.{name} is now Backend.{moved}", DeprecationWarning, stacklevel=3)
    concern, _, member = moved.partition(".")
    return getattr(getattr(backend, concern), member)


class _Rerouted:
    """Base of a concern copied for one backend whose class overrides old names."""


class _Reroute:
    """A concern some of whose ``members`` (new name -> old name) a subclass overrides
    under the old names: each backend gets a copy whose members call the overrides."""

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


#: The extra base of a subclass that overrides old names, for its ``super()`` calls.
_OldMembers = type("_OldMembers", (), {old: _old_member(old) for old in MOVED_MEMBERS})


class BackendType(type):
    """Wires a subclass's overrides of old names into its concerns, with a warning."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> BackendType:
        old = sorted(namespace.keys() & MOVED_MEMBERS.keys())
        if old and not any(issubclass(base, _OldMembers) for base in bases):
            bases = (*bases, _OldMembers)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if old:
            moves = ", ".join(f"{n} -> {MOVED_MEMBERS[n]}" for n in old)
            message = f"{name} overrides Backend members that moved to concern objects: {moves}"
            warnings.warn(message, DeprecationWarning, stacklevel=2)
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
