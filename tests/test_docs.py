"""The docs show every hook with its exact signature, every feature flag, and every
member of ``Backend`` and of its concern objects."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest

from storelayer import Backend, Features, hookspecs
from storelayer.backend import Errors, Migrations, Operations, Provisioning, Replication

DOC = (Path(__file__).parents[1] / "docs" / "plugins" / "writing-a-backend.md").read_text()
HOOKS = [
    (name, fn)
    for name, fn in vars(hookspecs).items()
    if name.startswith("storelayer_") and inspect.isfunction(fn)
]


def signature_text(fn: object) -> str:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{fn.__name__}({params}) -> {sig.return_annotation}"  # type: ignore[attr-defined]


def test_every_hook_is_prefixed_and_documented() -> None:
    assert HOOKS, "no hookspecs found"


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_documented_with_exact_signature(name: str, fn: object) -> None:
    assert f"### `{signature_text(fn)}`" in DOC


@pytest.mark.parametrize("flag", [f.name for f in fields(Features)])
def test_feature_flag_documented(flag: str) -> None:
    assert f"| `{flag}` |" in DOC


def public(cls: type) -> list[str]:
    return [name for name in dir(cls) if not name.startswith("_")]


MEMBERS = [
    (cls.__name__, name)
    for cls in (Backend, Errors, Operations, Replication, Provisioning, Migrations)
    for name in public(cls)
]


@pytest.mark.parametrize(("owner", "member"), MEMBERS, ids=[f"{o}.{m}" for o, m in MEMBERS])
def test_backend_member_documented(owner: str, member: str) -> None:
    assert re.search(rf"`{member}[`(]", DOC), f"{owner}.{member} is not in the tables"


def test_backend_itself_stays_small() -> None:
    """Identity, URLs, engine tuning and six concern objects; old names are not members."""
    assert len(public(Backend)) <= 21, public(Backend)
    assert "is_transient" not in public(Backend)

