"""Plugins that misbehave in the ways a registry must survive."""

from __future__ import annotations

from storelayer import Backend, BackendRegistry, hookimpl


class Nameless(Backend):
    schemes = ("nameless",)


class Raising:
    @hookimpl
    def storelayer_register_backends(self, register: BackendRegistry) -> None:
        raise RuntimeError("this plugin is broken on purpose")


class RegistersNameless:
    @hookimpl
    def storelayer_register_backends(self, register: BackendRegistry) -> None:
        register(Nameless())


class RegistersNotABackend:
    @hookimpl
    def storelayer_register_backends(self, register: BackendRegistry) -> None:
        register(object())  # type: ignore[arg-type]
