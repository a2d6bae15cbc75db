"""The pluggy markers of the ``storelayer`` project."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "storelayer"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
