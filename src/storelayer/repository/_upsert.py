"""Planning ``upsert_many``: validating the conflict target and batching rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import UniqueConstraint

from storelayer.backend.bulk import MAX_PARAMETERS
from storelayer.errors import QueryError
from storelayer.repository._query import ModelColumns
from storelayer.repository._statements import key_set


def unique_keys(cols: ModelColumns) -> list[frozenset[str]]:
    """Column-name sets that are unique: the primary key, unique constraints and
    indexes, and single columns declared ``unique=True``."""
    table = cols.table
    by_column = {col.name: key for key, col in cols.mapper.columns.items()}
    keys = [frozenset(cols.primary_key)]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            keys.append(frozenset(by_column.get(c.name, c.name) for c in constraint.columns))
    for index in table.indexes:
        if index.unique:
            keys.append(frozenset(by_column.get(c.name, c.name) for c in index.columns))
    keys += [frozenset([by_column.get(c.name, c.name)]) for c in table.columns if c.unique]
    return keys


def merge_repeated_keys(
    rows: Iterable[dict[str, Any]], on: Sequence[str], update: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per conflict key, merged as if the rows were upserted one at a time: the
    first row, with the ``update`` columns of each later row written over it. One
    statement may not touch a row twice (PostgreSQL refuses; SQLite and MySQL apply the
    rows in order, which this reproduces), so every backend ends with the same rows."""
    rows = list(rows)
    try:
        if len(set(map(itemgetter(*on), rows))) == len(rows):
            return rows  # no key twice (the usual case), found in C
    except (TypeError, KeyError):  # unhashable, or a key left out: row by row below
        pass
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    unhashable: list[dict[str, Any]] = []
    for row in rows:
        try:
            key = tuple(row[name] for name in on)
            earlier = merged.get(key)
        except TypeError:  # a key value that cannot be hashed: leave it to the database
            unhashable.append(row)
            continue
        if earlier is None:
            merged[key] = dict(row)
        else:
            earlier.update((name, row[name]) for name in update if name in row)
    return [*merged.values(), *unhashable]


def upsert_plan(
    cols: ModelColumns,
    rows: list[dict[str, Any]],
    on: Sequence[str],
    update: Sequence[str] | None,
) -> Iterator[tuple[list[dict[str, Any]], list[str]]]:
    """Batches of rows with one key set each, and the columns each batch overwrites,
    keyed by table column keys."""
    for name in on:
        cols.attribute(name, purpose="upsert on")
    if frozenset(on) not in unique_keys(cols):
        raise QueryError(
            f"upsert_many(on={list(on)}): those columns are not a primary key or unique "
            f"constraint of {cols.model.__name__}; conflicts can only be detected on one"
        )
    for name in update or ():
        cols.attribute(name, purpose="update in upsert")
    rewritten = sorted({*on, *cols.primary_key}.intersection(update or ()))
    if rewritten:
        raise QueryError(
            f"upsert_many(update={list(update or ())}) would rewrite the key column(s) "
            f"{rewritten} of an existing {cols.model.__name__} row; leave conflict and primary "
            "key columns out of update (they identify the row)"
        )
    for keys, group in groupby(rows, key=key_set):
        missing = [name for name in on if name not in keys]
        if missing:
            raise QueryError(f"upsert_many() rows need the conflict columns {missing}")
        chosen = (
            list(update)
            if update is not None
            else [k for k in keys if k not in on and k not in cols.primary_key]
        )
        batch = cols.to_table_rows(merge_repeated_keys(group, on, chosen))
        chosen = [cols.column_keys[name] for name in chosen]
        size = max(1, MAX_PARAMETERS // max(1, len(keys)))
        for start in range(0, len(batch), size):
            yield batch[start : start + size], chosen
