"""``storelayer migrate init``: a new migration directory for an application's models."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from sqlalchemy import MetaData

from storelayer.migrations.errors import MigrationError

_HERE = Path(__file__).resolve()
#: Where the reference migrations are: inside an installed package, then a checkout.
REFERENCE_LOCATIONS = (
    _HERE.parents[1] / "reference" / "alembic",
    _HERE.parents[3] / "alembic",
)


def reference_script_location() -> Path:
    """The directory of the reference schema's migrations (``env.py``, ``versions/``)."""
    for candidate in REFERENCE_LOCATIONS:
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(
        "the reference schema's migrations are missing: looked in "
        f"{', '.join(str(p) for p in REFERENCE_LOCATIONS)}; reinstall storelayer"
    )


ENV_TEMPLATE = '''"""Alembic environment of {module}.

storelayer connects, takes the migration lock and runs the migrations:
storelayer migrate -d {directory} upgrade
"""

from storelayer.migrations import run_migrations
from {module} import {name}

run_migrations({target}{options})
'''


def app_metadata(spec: str) -> tuple[str, str, MetaData]:
    """Import ``module:name`` (a declarative base or a ``MetaData``): the module, the
    expression of the metadata (``Base.metadata`` or ``metadata``) and the metadata;
    ``MigrationError`` saying what is wrong."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name.isidentifier():
        raise MigrationError(f"--app takes MODULE:NAME (e.g. myapp.models:Base), not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MigrationError(
            f"cannot import {module_name}: {error} (run from the directory that holds your "
            "package, or put it on PYTHONPATH)"
        ) from error
    found = getattr(module, name, None)
    metadata = found if isinstance(found, MetaData) else getattr(found, "metadata", None)
    if not isinstance(metadata, MetaData):
        raise MigrationError(
            f"{spec} is not a declarative base or a MetaData (found {type(found).__name__})"
        )
    return module_name, name if found is metadata else f"{name}.metadata", metadata


def init_directory(directory: Path, app: str, version_table: str | None = None) -> list[Path]:
    """Write ``env.py``, ``script.py.mako`` and ``versions/`` into ``directory`` (which
    must be missing or empty) for the models of ``app`` (``module:Base``)."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise MigrationError(f"{directory} already exists and is not empty: choose another")
    module, target, metadata = app_metadata(app)
    if not metadata.tables:
        raise MigrationError(f"{app} declares no table: import your models in {module}")
    versions = directory / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    env = directory / "env.py"
    options = f", version_table={version_table!r}" if version_table else ""
    env.write_text(ENV_TEMPLATE.format(module=module, name=target.split(".")[0], target=target,
                                       options=options, directory=directory))
    mako = directory / "script.py.mako"
    shutil.copyfile(reference_script_location() / "script.py.mako", mako)
    keep = versions / ".gitkeep"  # git keeps no empty directory; Alembic needs this one
    keep.touch()
    return [env, mako, keep]
