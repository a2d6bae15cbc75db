"""``storelayer info``: what ``connect()`` would use, without connecting."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from storelayer import __version__
from storelayer.cli.output import emit_json, pairs, section
from storelayer.cli.plugins import plugins_table
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.config import mask_url
from storelayer.database import Database
from storelayer.plugins import PluginInfo


def pool_settings(engine: Engine) -> dict[str, Any]:
    """The pool settings in effect, read from the engine's pool (not from the config)."""
    pool = engine.pool
    queue = pool if isinstance(pool, QueuePool) else None
    return {
        "class": type(pool).__name__,
        "size": queue.size() if queue else None,
        "max_overflow": queue._max_overflow if queue else None,
        "timeout": queue.timeout() if queue else None,
        "recycle": pool._recycle,
        "pre_ping": pool._pre_ping,
    }


def backend_identity(db: Database) -> dict[str, Any]:
    """The backend's name and the plugin distribution that provides it."""
    plugin = db.plugins.plugin_of(db.backend) or PluginInfo(name="?")
    return {
        "name": db.backend.name,
        "plugin": plugin.name,
        "distribution": plugin.distribution,
        "version": plugin.version,
    }


def describe(db: Database) -> dict[str, Any]:
    """Everything ``info`` shows, JSON-ready; passwords masked."""
    return {
        "storelayer": __version__,
        "backend": backend_identity(db),
        "url": mask_url(db.url),
        "replicas": [mask_url(url) for url in db.settings.replica_urls],
        "pool": pool_settings(db.engine),
        "features": asdict(db.backend.features),
        "plugins": [info.to_dict() for info in db.plugins.plugins()],
    }


def info_text(facts: dict[str, Any]) -> str:
    """The facts as titled text blocks."""
    backend = facts["backend"]
    provider = f"{backend['distribution'] or backend['plugin']} {backend['version'] or ''}"
    head = {
        "storelayer": facts["storelayer"],
        "backend": f"{backend['name']} (from {provider.strip()})",
        "url": facts["url"],
        "replicas": facts["replicas"] or "none",
    }
    blocks = [
        pairs(head),
        section("pool", pairs(facts["pool"], indent=2)),
        section("features", pairs(facts["features"], indent=2)),
        section("plugins", plugins_table([PluginInfo(**p) for p in facts["plugins"]])),
    ]
    return "\n\n".join(blocks)


@click.command("info")
@json_option
@pass_state
def info_command(state: CliState) -> None:
    """Show the backend, masked URL, pool settings, features and plugins in effect.

    Does not connect: works when the database is down."""
    with state.connect() as db:
        facts = describe(db)
    if state.json:
        emit_json(facts)
    else:
        click.echo(info_text(facts))
