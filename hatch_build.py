"""Where the core's plugin dependencies come from (a hatch metadata hook).

Built from a checkout, ``storelayer-sqlite`` (a dependency) and the other bundled
backends (the ``postgresql``, ``mysql`` and ``all`` extras) are direct references to
their directories under ``backends/``, so ``pip install .``, ``pip install -e .`` and
``pip install '.[all]'`` work without an index that has them. A release is built with
``STORELAYER_RELEASE=1``: plain names, as an index requires (it refuses direct
references, so a forgotten variable cannot publish a checkout's paths).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

BACKENDS = ("sqlite", "postgresql", "mysql")


class BundledBackends(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        root = Path(self.root)
        release = bool(os.environ.get("STORELAYER_RELEASE"))

        def requirement(backend: str) -> str:
            name = f"storelayer-{backend}"
            checkout = root / "backends" / backend
            if not release and (checkout / "pyproject.toml").is_file():
                return f"{name} @ {checkout.resolve().as_uri()}"
            return name

        metadata["dependencies"] = [*self.config["dependencies"], requirement("sqlite")]
        metadata["optional-dependencies"] = {
            **self.config["optional-dependencies"],
            "postgresql": [requirement("postgresql")],
            "mysql": [requirement("mysql")],
            "all": [requirement("postgresql"), requirement("mysql")],
        }
