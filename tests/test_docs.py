"""The docs show every hook with its exact signature and every feature flag."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import pytest

from storelayer import Features, hookspecs

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
