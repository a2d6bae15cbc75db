"""The exported suite, run as a third-party author runs it, against the smallest backend
(tests/fake_plugins/lite_backend.py): it passes, skipping only by the flags it declares."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from fake_plugins.lite_backend import LiteBackend
from storelayer import Features

REGISTER = f"""import sys
sys.path.insert(0, {str(Path(__file__).parent / "fake_plugins")!r})
import lite_backend
from storelayer.plugins import get_plugin_manager
get_plugin_manager().register(lite_backend, name="lite")
"""


def test_the_smallest_backend_passes_the_exported_suite(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(REGISTER)
    (tmp_path / "test_lite.py").write_text("from storelayer.testing.suite import *  # noqa\n")
    # the exported suite needs no asyncio plugin (pytest-asyncio is a dev dependency here)
    options = ["-c", "/dev/null", "-W", "error", "--strict-markers", "-rs", "-p", "no:xdist"]
    options += ["-p", "no:asyncio"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), *options, "--storelayer-backends=lite"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    declared_off = {f.name for f in fields(Features) if not getattr(LiteBackend.features, f.name)}
    reasons = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", done.stdout, re.MULTILINE)
    flags = [re.fullmatch(r"backend 'lite' lacks feature '(\w+)'", r) for r in reasons]
    assert all(flags), f"skipped other than by a flag: {reasons}"
    assert {m[1] for m in flags if m} <= declared_off
