"""The docs show every hook with its exact signature, every feature flag and every
member of ``Backend`` and of its concern objects, and their runnable examples run.

An example is runnable when the line before its fence is ``<!-- test: run -->``. An
HTML comment ``<!-- test: setup ... -->`` holds code the page does not show (a model, a
table) that runs first. A document's blocks run in order in one namespace, in an empty
directory with ``DATABASE_URL`` unset: on a new ``./storelayer.db``.

The docs site (``mkdocs.yml``) builds with ``--strict``: no broken link or anchor, no
page left out of the navigation.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from storelayer import Backend, Features, hookspecs
from storelayer.backend import (
    Client,
    Errors,
    Migrations,
    Operations,
    Provisioning,
    Replication,
)

ROOT = Path(__file__).parents[1]
DOC = (ROOT / "docs" / "plugins" / "writing-a-backend.md").read_text()
BLOCK = re.compile(
    r"^<!-- test: setup\n(?P<setup>.*?)^-->$|^<!-- test: run -->\n```python\n(?P<run>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
RUNNABLE = {
    path.relative_to(ROOT).as_posix(): blocks
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    if (blocks := [m.group("setup") or m.group("run") for m in BLOCK.finditer(path.read_text())])
}
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
    for cls in (Backend, Errors, Operations, Replication, Provisioning, Migrations, Client)
    for name in public(cls)
]


@pytest.mark.parametrize(("owner", "member"), MEMBERS, ids=[f"{o}.{m}" for o, m in MEMBERS])
def test_backend_member_documented(owner: str, member: str) -> None:
    assert re.search(rf"`{member}[`(]", DOC), f"{owner}.{member} is not in the tables"


def test_backend_itself_stays_small() -> None:
    """Identity, URLs, engine tuning and seven concern objects; old names are not members."""
    assert len(public(Backend)) <= 22, public(Backend)
    assert "is_transient" not in public(Backend)


@pytest.fixture
def run_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run a document's runnable blocks as a module of their own; its namespace. It and
    the modules the blocks made up (an example's ``myapp``: no spec, not imported from
    a file) leave ``sys.modules`` afterwards."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URLS"):
        monkeypatch.delenv(name, raising=False)
    before = set(sys.modules)

    def run(document: str) -> dict[str, Any]:
        module = sys.modules[f"docs:{document}"] = types.ModuleType(f"docs:{document}")
        for block in RUNNABLE[document]:
            exec(compile(block, document, "exec", dont_inherit=True), vars(module))
        return vars(module)

    yield run
    for name in set(sys.modules) - before:
        if sys.modules[name].__spec__ is None:
            del sys.modules[name]


def test_the_readme_and_the_async_guide_have_runnable_examples() -> None:
    assert {"README.md", "docs/async.md"} <= set(RUNNABLE)


@pytest.mark.parametrize("document", sorted(RUNNABLE))
def test_runnable_examples_run(document: str, run_document: Any) -> None:
    namespace = run_document(document)
    db = namespace.get("db")
    if db is not None and not inspect.iscoroutinefunction(db.dispose):
        db.dispose()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # Python 3.10
@pytest.mark.parametrize("framework", ["app", "api"], ids=["starlette", "fastapi"])
def test_the_web_examples_serve_notes_with_read_your_writes(
    run_document: Any, framework: str
) -> None:
    from starlette.testclient import TestClient

    app = run_document("docs/async.md")[framework]
    with TestClient(app) as client:  # runs the lifespan: the pools close at the end
        created = client.post("/notes", json={"text": "first"})
        assert created.status_code == 201
        assert "sl_token" in created.cookies
        listed = client.get("/notes")
    assert listed.status_code == 200
    assert listed.json() == [{"id": created.json()["id"], "text": "first"}]


def test_the_docs_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    docs = ROOT / "docs"
    documents = {
        (p.relative_to(docs).parent / p.stem / "index.html").as_posix().replace("index/", "")
        for p in docs.rglob("*.md")
    }
    assert documents <= pages
