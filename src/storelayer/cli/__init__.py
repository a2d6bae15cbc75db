"""The ``storelayer`` command-line interface (click)."""

from storelayer.cli.app import cli, main

__all__ = ["cli", "main"]
