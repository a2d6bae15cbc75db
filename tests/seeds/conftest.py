"""Fixtures of the source documents' examples: a working directory of their own and an
empty scratch database of the backend under test before each example."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import URL

import storelayer
from storelayer import Backend


def wipe(url: URL, backend: Backend) -> None:
    """Drop every table of the scratch database: each example starts from nothing, with
    fresh keys (some examples name rows by key: ``get_by_id(1)``)."""
    with storelayer.connect(url, backend=backend.name) as db:
        found = MetaData()
        found.reflect(db.engine)
        found.drop_all(db.engine)


@pytest.fixture
def db_url(
    database_url: URL, backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> str:
    """The scratch database's URL as text (the documents pass URLs as text), emptied; the
    test runs in a directory of its own (the documents write ``./specify.db``,
    ``backups/``, ``migrations/``)."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    wipe(database_url, backend)
    return database_url.render_as_string(hide_password=False)
