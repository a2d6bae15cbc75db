"""taskboard's tests run on the fixtures storelayer's pytest plugin exports: this file
only says where the application's migrations are."""

from pathlib import Path

import pytest

from storelayer.testing import AppSchema


@pytest.fixture(scope="session")
def storelayer_schema() -> AppSchema:
    return AppSchema(migrations=Path(__file__).parents[1] / "migrations")
