"""The body of an Alembic ``env.py`` on storelayer: a whole ``env.py`` is ::

    from storelayer.migrations import run_migrations
    from myapp.models import Base

    run_migrations(Base.metadata)

It connects through storelayer (``DATABASE_URL`` and the backend's tuning, or the
database ``MigrationManager`` hands over), takes the migration lock, uses batch mode
where the backend needs it (``Features.batch_alter``), one transaction for the whole
run where DDL is transactional and one per migration where it is not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from logging.config import fileConfig
from pathlib import Path
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationInfo
from sqlalchemy import MetaData, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.functions import FunctionElement

from storelayer.backend import Backend
from storelayer.database import Database, connect
from storelayer.migrations.downgrades import chain_directives
from storelayer.migrations.errors import MigrationError
from storelayer.migrations.locks import DEFAULT_LOCK_TIMEOUT, Report, migration_lock

#: Keys of ``Config.attributes`` that ``MigrationManager`` fills in.
DATABASE = "storelayer.database"
REPORT = "storelayer.report"
LOCK_TIMEOUT = "storelayer.lock_timeout"
APPLIED = "storelayer.applied"
#: The statements run since the last applied step (what a failing one did before it
#: failed), kept by ``_run_online``.
STATEMENTS = "storelayer.statements"
VERSION_TABLE = "version_table"

#: A character set or collation clause of a column type.
_CHARSET = re.compile(r"\s+(COLLATE|CHARACTER SET|CHARSET)\s+[\w\"'`]+", re.IGNORECASE)

IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]
IncludeName = Callable[[str | None, str, dict[str, str | None]], bool]


def run_migrations(
    target_metadata: MetaData | Sequence[MetaData] | None = None,
    *,
    include_object: IncludeObject | None = None,
    **configure: Any,
) -> None:
    """Run the Alembic command in progress (upgrade, downgrade, stamp, check,
    revision --autogenerate) against the configured database. ``configure`` goes to
    ``context.configure()`` last, so it can override any choice made here.

    Autogenerate and ``check`` consider only the tables of ``target_metadata``: a table
    of the database that the models do not declare (another application's, the
    reference schema's, a version table) is never dropped. Pass ``include_name`` to
    choose otherwise."""
    if context.is_offline_mode():
        raise MigrationError(
            "offline (--sql) migrations are not supported: run them against a database"
        )
    config = context.config
    if config.config_file_name is not None:  # the alembic command with an ini file
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    database: Database | None = config.attributes.get(DATABASE)
    owned = database is None
    if database is None:
        database = connect(config.get_main_option("sqlalchemy.url") or None)
    try:
        _run_online(config, database, target_metadata, include_object, configure)
    finally:
        if owned:
            database.dispose()


def _run_online(
    config: Config,
    database: Database,
    target_metadata: MetaData | Sequence[MetaData] | None,
    include_object: IncludeObject | None,
    configure: dict[str, Any],
) -> None:
    version_table = _version_table(config, configure.pop("version_table", None))
    report: Report | None = config.attributes.get(REPORT)
    timeout = float(config.attributes.get(LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT))
    applied: list[dict[str, Any]] = config.attributes.setdefault(APPLIED, [])
    statements: list[str] = config.attributes.setdefault(STATEMENTS, [])

    def step_done(**kw: Any) -> None:
        applied.append(describe_step(kw["step"]))
        statements.clear()

    with database.engine.connect() as connection, migration_lock(
        connection, name=version_table, backend=database.backend, timeout=timeout, report=report
    ):
        recorder = record_statements(connection, statements, version_table)
        options = context_options(database.backend, version_table)
        options.update(
            target_metadata=target_metadata,
            include_name=own_tables(target_metadata),
            include_object=include_object,
            on_version_apply=step_done,
        )
        options.update(configure)
        options["process_revision_directives"] = chain_directives(
            options.get("process_revision_directives")
        )
        context.configure(connection=connection, **options)
        try:
            with context.begin_transaction():
                context.run_migrations()
                if applied and applied[-1]["direction"] == "downgrade":
                    _drop_empty_version_table(connection, version_table)
        finally:  # what the lock's release runs is no step's
            event.remove(connection, "after_cursor_execute", recorder)


def record_statements(
    connection: Connection, into: list[str], version_table: str
) -> Callable[..., None]:
    """Keep the text (never the parameters) of each statement ``connection`` completes,
    but the version table's own bookkeeping; returns the listener, to remove."""

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        if version_table not in text:
            into.append(text)

    event.listen(connection, "after_cursor_execute", after)
    return after


def _version_table(config: Config, declared: str | None) -> str:
    """The version table: ``env.py``'s choice must match the one ``MigrationManager`` (the
    CLI's ``--version-table``) reads, or it would report the wrong revision."""
    given = config.get_main_option(VERSION_TABLE)
    if declared and given and declared != given and DATABASE in config.attributes:
        raise MigrationError(
            f"env.py keeps its revisions in the version table {declared!r} but this "
            f"command reads {given!r}: pass --version-table {declared} "
            f"(MigrationManager(version_table={declared!r}))"
        )
    return declared or given or "alembic_version"


def declared_version_table(env_py: Path) -> str | None:
    """The version table an ``env.py`` names as a literal in ``run_migrations(...,
    version_table="...")``, read without running it; None when it names none."""
    try:
        tree = ast.parse(env_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_migrations":
            for keyword in node.keywords:
                value = keyword.value
                if (keyword.arg == "version_table" and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)):
                    return value.value
    return None


def own_tables(
    target_metadata: MetaData | Sequence[MetaData] | None,
) -> IncludeName | None:
    """An ``include_name`` hook that lets autogenerate see only the tables of
    ``target_metadata`` (None: every table)."""
    if target_metadata is None:
        return None
    metadatas = [target_metadata] if isinstance(target_metadata, MetaData) else target_metadata
    known = {key for metadata in metadatas for key in metadata.tables}

    def include_name(name: str | None, type_: str, parents: dict[str, str | None]) -> bool:
        if type_ != "table":
            return True
        return (parents.get("schema_qualified_table_name") or name) in known

    return include_name


def _drop_empty_version_table(connection: Connection, version_table: str) -> None:
    """After a downgrade to base, leave no table behind (Alembic keeps an empty one)."""
    if context.get_context().get_current_heads():
        return
    Table(version_table, MetaData()).drop(connection, checkfirst=True)


def context_options(backend: Backend, version_table: str) -> dict[str, Any]:
    """``context.configure()`` options that follow from the backend's features."""
    features = backend.features
    return {
        "version_table": version_table,
        # SQLite cannot ALTER most things: Alembic copies the table instead.
        "render_as_batch": features.batch_alter,
        "transactional_ddl": features.transactional_ddl,
        # Without transactional DDL every statement commits: record each migration
        # as soon as it is done, so a failure leaves the version table truthful.
        "transaction_per_migration": not features.transactional_ddl,
        "compare_type": compare_type,
        "render_item": render_item,
    }


def _ddl(type_: Any, dialect: Any) -> str:
    """A column type as ``dialect`` (with the backend's adaptations) creates it, without
    the character set or collation (the table's default)."""
    text = str(type_.compile(dialect=dialect)).upper()
    return " ".join(_CHARSET.sub("", text).split())


def compare_type(
    context: Any, _inspected: Any, _metadata: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic's type comparison, but a model type the backend creates as exactly the
    database's type is no difference (MySQL makes ``Text`` a ``LONGTEXT``, ``DateTime``
    a ``DATETIME(6)``); otherwise Alembic decides."""
    try:
        same = _ddl(metadata_type, context.dialect) == _ddl(inspected_type, context.dialect)
    except Exception:  # a type this dialect cannot compile: let Alembic compare
        return None
    return False if same else None


def describe_step(step: MigrationInfo) -> dict[str, Any]:
    """One applied step, JSON-ready: what ``upgrade``/``downgrade`` report."""
    direction = "stamp" if step.is_stamp else "upgrade" if step.is_upgrade else "downgrade"
    script = step.up_revision
    doc = getattr(script, "doc", None)
    return {
        "revision": step.up_revision_id,
        "direction": direction,
        "message": _first_line(doc if isinstance(doc, str) else None),
    }


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def render_item(type_: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Autogenerate renders types and server defaults portably: a custom type gets its
    import, ``true()``/``false()`` and argument-less SQL functions stay constructs
    (never one dialect's SQL text)."""
    if type_ == "type":
        module = type(obj).__module__
        if not module.startswith("sqlalchemy"):
            autogen.imports.add(f"import {module}")
        return False
    if type_ == "server_default" and isinstance(obj, DefaultClause):
        arg = obj.arg
        if isinstance(arg, True_ | False_):
            return "sa.true()" if isinstance(arg, True_) else "sa.false()"
        if isinstance(arg, FunctionElement) and not list(arg.clauses):
            module = type(arg).__module__
            if not module.startswith("sqlalchemy"):
                autogen.imports.add(f"import {module}")
                return f"{module}.{type(arg).__name__}()"
    return False
