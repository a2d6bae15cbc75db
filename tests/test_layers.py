"""The core's import layers: no module imports a layer above its own (no import cycle),
checked with import-linter, and docs/architecture.md lists the layers in the order the
contract enforces."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[1]


def test_import_linter_contracts_are_kept() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_docs_list_the_enforced_layers_in_order() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layered = next(c for c in config["contracts"] if c["type"] == "layers")
    enforced = [sorted(name.strip() for name in layer.split("|")) for layer in layered["layers"]]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    documented = [
        sorted(re.findall(r"`([\w.]+)`", row.split("|")[1]))
        for row in doc.splitlines()
        if row.startswith("| `")
    ]
    assert documented == enforced
