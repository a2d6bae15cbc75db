"""One ``COPY ... FROM STDIN`` for a whole stream of row batches (``storelayer copy``):
psycopg2 pulls the text of the next batch only when it has sent the last, so the server
parses and stores rows while the next batch is read and encoded.

Each batch holds a list of values per column. The columns are encoded as in
:func:`fastpath.copy_insert` (bind processor, then one encoder per column). A batch that
this path cannot encode ends the ``COPY`` there (the rows sent so far stay), goes through
``fallback``, and the rest of the stream starts a new ``COPY``. When reading or encoding
the stream raises (an error, or Ctrl-C), the ``COPY`` is aborted and that exception,
not psycopg2's report of it, is raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from operator import attrgetter, is_not
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from storelayer.backend.bulk import Unsupported
from storelayer.backend.driver_errors import driver_errors_wrapped
from storelayer_postgresql.fastpath import (
    _column_text,
    _psycopg2_cursor,
    copy_statement,
)

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection, Dialect

Batch = Sequence[Sequence[Any]]
Fallback = Callable[[Batch], None]


class _Aborted(Exception):
    """Raised into psycopg2 to abort the ``COPY``; says nothing (the server logs it)."""

    def __str__(self) -> str:
        return ""


class _Stream:
    """The file psycopg2's ``copy_expert`` reads: one batch's text a ``read()``; the
    empty string when the stream ends or at a batch it cannot encode (kept in
    ``pending``)."""

    def __init__(self, batches: Iterator[Batch], encode: Callable[[Batch], str]) -> None:
        self.batches = batches
        self.encode = encode
        self.pending: Batch | None = None
        self.error: BaseException | None = None
        self.ended = False

    def read(self, _size: int = -1) -> str:
        try:
            batch = next(self.batches, None)
            if batch is None:
                self.ended = True
                return ""
            try:
                return self.encode(batch)
            except Unsupported:
                self.pending = batch
                return ""
        except BaseException as error:
            self.error = error
            raise _Aborted from None

    def readline(self, _size: int = -1) -> str:  # psycopg2 checks that it exists
        return self.read()


def _reuses_texts(column: Column[Any], dialect: Dialect) -> bool:
    """Whether the texts the copy's checksum made for the column's values (``str`` of
    numbers, ``isoformat`` of naive datetimes: ``_column_text``'s) are its ``COPY`` text:
    it has no bind processor, or one that binds a naive datetime as it is."""
    impl = column.type.dialect_impl(dialect)
    if impl._cached_bind_processor(dialect) is None:
        return True
    as_is = getattr(impl, "binds_naive_as_is", None)
    return bool(as_is is not None and as_is(dialect))


def _with_nulls(texts: Sequence[str | None]) -> Sequence[str]:
    if None not in texts:
        return texts  # type: ignore[return-value]
    return [r"\N" if text is None else text for text in texts]


_tzinfo = attrgetter("tzinfo")


def _bound(process: Callable[[Any], Any] | None, values: Sequence[Any], naive: bool) -> list[Any]:
    """``values`` through the column's bind processor, skipped where it would change
    nothing: ``naive`` (it binds a naive datetime as it is) and every value is one."""
    if process is None:
        return list(values)
    if naive:
        present = list(filter(partial(is_not, None), values))
        if set(map(type, present)) <= {dt.datetime} and set(map(_tzinfo, present)) <= {None}:
            return list(values)
    return list(map(process, values))


def _encoder(connection: Connection, table: Table) -> Callable[[Batch], str]:
    dialect = connection.dialect
    processors = [c.type._cached_bind_processor(dialect) for c in table.columns]
    reuse = [_reuses_texts(c, dialect) for c in table.columns]

    def encode(batch: Batch) -> str:
        shared = getattr(batch, "texts", None) or [None] * len(processors)
        text = [
            _with_nulls(known) if known is not None and reused
            else _column_text(_bound(process, values, reused))
            for process, values, known, reused in zip(
                processors, batch, shared, reuse, strict=True
            )
        ]
        return "\n".join(map("\t".join, zip(*text, strict=True))) + "\n"

    return encode


def copy_columns(
    connection: Connection, table: Table, batches: Iterable[Batch], fallback: Fallback
) -> bool:
    """``COPY`` every batch into ``table`` (all its columns, in order); False (nothing
    consumed) when this is not a psycopg2 connection."""
    try:
        cursor = _psycopg2_cursor(connection)
    except Unsupported:
        return False
    statement = copy_statement(connection, table, list(table.columns))
    stream = _Stream(iter(batches), _encoder(connection, table))
    with cursor:
        while not stream.ended:
            try:
                with driver_errors_wrapped(connection, statement):
                    cursor.copy_expert(statement, stream)
            except Exception:
                if stream.error is not None:
                    raise stream.error from None
                raise
            if stream.pending is not None:
                fallback(stream.pending)
                stream.pending = None
    return True


#: The foreign keys of a table that this role may drop and add again: it owns the table
#: (or is a member of its owner) and may reference the other one.
_FOREIGN_KEYS = text(
    "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "JOIN pg_class t ON t.oid = c.conrelid "
    "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid = CAST(:table AS regclass) "
    "AND pg_has_role(t.relowner, 'USAGE') AND has_table_privilege(c.confrelid, 'REFERENCES') "
    "ORDER BY conname"
)


#: The primary keys and unique constraints of a table this role may drop and add again,
#: that no foreign key left in place depends on; primary keys first.
_KEYS = text(
    "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "JOIN pg_class t ON t.oid = c.conrelid "
    "WHERE c.contype IN ('p', 'u') AND c.conparentid = 0 AND t.relkind = 'r' "
    "AND c.conrelid = CAST(:table AS regclass) AND pg_has_role(t.relowner, 'USAGE') "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' "
    "AND f.conindid = c.conindid) ORDER BY c.contype, conname"
)
#: The other indexes of a table (none behind a constraint), with what makes them again.
_INDEXES = text(
    "SELECT n.nspname, i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace "
    "JOIN pg_class t ON t.oid = x.indrelid "
    "WHERE x.indrelid = CAST(:table AS regclass) AND t.relkind = 'r' "
    "AND pg_has_role(t.relowner, 'USAGE') "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
    "ORDER BY i.relname"
)


def _ddl(connection: Connection, statement: str) -> None:
    connection.exec_driver_sql(statement.replace("%", "%%"))  # psycopg2 reads % as a bind


@contextmanager
def constraints_after(connection: Connection, tables: Sequence[Table]) -> Iterator[None]:
    """Drop the foreign keys, primary keys, unique constraints and indexes of ``tables``
    (in this transaction) while the block fills them, then make them again as they were,
    keys first: PostgreSQL then builds each index once from the rows and checks each
    foreign key in one query, instead of row by row (about three times faster for rows
    that reference others; an index built after the rows costs about half). A row that
    breaks one fails the copy as before. If the block fails, the transaction's rollback
    brings them back. What this role may not drop and add again (a table it does not
    own, a key a foreign key of another table depends on) stays, checked row by row."""
    preparer = connection.dialect.identifier_preparer
    names = [preparer.format_table(table) for table in tables]
    again: list[str] = []
    foreign: list[str] = []

    def drop_constraints(name: str, query: Any, added: list[str]) -> None:
        for constraint, definition in connection.execute(query, {"table": name}).all():
            quoted = preparer.quote(constraint)
            _ddl(connection, f"ALTER TABLE {name} DROP CONSTRAINT {quoted}")
            added.append(f"ALTER TABLE {name} ADD CONSTRAINT {quoted} {definition}")

    for name in names:
        drop_constraints(name, _FOREIGN_KEYS, foreign)
    for name in names:
        drop_constraints(name, _KEYS, again)
        for schema, index, definition in connection.execute(_INDEXES, {"table": name}).all():
            _ddl(connection, f"DROP INDEX {preparer.quote(schema)}.{preparer.quote(index)}")
            again.append(definition)
    yield
    for statement in again + foreign:
        _ddl(connection, statement)
