"""Portable types on MySQL/MariaDB: the DDL of the generic SQLAlchemy types adapted so
that a value comes back as it was written, without changing the application's models.

- ``DateTime`` and ``Time`` are ``DATETIME(6)`` and ``TIME(6)``: the plain types drop
  the microseconds;
- ``Float`` is ``DOUBLE``: MySQL's ``FLOAT`` is 4 bytes;
- ``Text`` and ``LargeBinary`` without a length are ``LONGTEXT`` and ``LONGBLOB``: the
  plain types hold 64 KiB;
- ``Uuid`` (and ``UUID``) is ``CHAR(32)`` on MariaDB too: its ``UUID`` type refuses some
  128-bit values;
- every table is created ``utf8mb4`` (``utf8mb4_unicode_ci``) unless it says otherwise
  (``mysql_charset``), whatever the server's or the database's default character set.

A type the model spells in MySQL's own terms (``mysql.DATETIME(fsp=0)``,
``mysql.FLOAT``, ``mysql.TEXT``) is left as it is. Applied per engine
(``adapt_engine``), so SQLAlchemy's dialect stays as it is for other code.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, types
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql.base import MySQLDDLCompiler, MySQLTypeCompiler
from sqlalchemy.engine import Engine

#: The character set and collation of tables that name none.
TABLE_CHARSET = "utf8mb4"
TABLE_COLLATION = "utf8mb4_unicode_ci"
#: Fractional digits of DATETIME and TIME: microseconds, as Python keeps them.
FRACTIONAL_DIGITS = 6


class PortableTypeCompiler(MySQLTypeCompiler):
    """DDL of the generic types that keeps every value they take."""

    def visit_DATETIME(self, type_: Any, **kw: Any) -> str:
        if getattr(type_, "fsp", None) is None:
            return f"DATETIME({FRACTIONAL_DIGITS})"
        return super().visit_DATETIME(type_, **kw)

    def visit_TIME(self, type_: Any, **kw: Any) -> str:
        if getattr(type_, "fsp", None) is None:
            return f"TIME({FRACTIONAL_DIGITS})"
        return super().visit_TIME(type_, **kw)

    def visit_float(self, type_: Any, **kw: Any) -> str:
        if type(type_) is types.Float:
            return "DOUBLE"
        return super().visit_float(type_, **kw)

    def visit_text(self, type_: Any, **kw: Any) -> str:
        if type(type_) is types.Text and type_.length is None:
            return self.visit_LONGTEXT(mysql.LONGTEXT(collation=type_.collation), **kw)
        return super().visit_text(type_, **kw)

    def visit_UUID(self, type_: Any, **kw: Any) -> str:
        # ``sa.UUID``/``postgresql.UUID`` spelled in a model or a migration: the same
        # CHAR(32) as ``Uuid`` (so foreign keys between the two match; MySQL has no UUID)
        return self.visit_CHAR(mysql.CHAR(32), **kw)

    def visit_large_binary(self, type_: Any, **kw: Any) -> str:
        if type(type_) is types.LargeBinary and type_.length is None:
            return "LONGBLOB"
        return super().visit_large_binary(type_, **kw)


class PortableDDLCompiler(MySQLDDLCompiler):
    """``CREATE TABLE`` in utf8mb4 unless the table names its character set."""

    def post_create_table(self, table: Any) -> str:
        options = super().post_create_table(table)
        mysql_options = {k.lower() for k in table.dialect_options["mysql"]._non_defaults}
        named = {
            "charset",
            "default_charset",
            "character_set",
            "default_character_set",
            "collate",
            "default_collate",
        } & mysql_options
        if named:
            return options
        return f"{options} DEFAULT CHARSET={TABLE_CHARSET} COLLATE={TABLE_COLLATION}"


def adapt_engine(engine: Engine) -> None:
    """Make ``engine`` create tables with the portable DDL above."""
    dialect = engine.dialect
    # MariaDB's native UUID refuses 128-bit values that are not RFC 4122 UUIDs, which
    # Python's uuid.UUID (and every other backend) holds: CHAR(32), as on MySQL.
    dialect.supports_native_uuid = False

    @event.listens_for(engine, "connect")
    def after_initialize(_dbapi_connection: Any, _record: Any) -> None:
        dialect.supports_native_uuid = False  # the dialect sets it on the first connect

    # type_compiler: the older name of the same instance, which Alembic's type
    # comparison (migrate check) still uses.
    dialect.type_compiler_instance = dialect.type_compiler = PortableTypeCompiler(dialect)
    dialect.ddl_compiler = PortableDDLCompiler
