"""``Repository[T]``: the generic repository of one mapped class in one session."""

from __future__ import annotations

import builtins
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

from sqlalchemy import insert, update

from storelayer._conflicts import conflicts_raised
from storelayer._engines import AUTOCOMMIT_KEY
from storelayer._shapes import AttributeDict
from storelayer.errors import NotFound, QueryError
from storelayer.repository import _statements as sql
from storelayer.repository._aggregate import aggregate_rows, as_results
from storelayer.repository._cursor import cursor_key, decode_cursor, encode_cursor
from storelayer.repository._kept import shaped_count, shaped_rows
from storelayer.repository._page import KeysetPage, Page, clamp_page, offset_page
from storelayer.repository._plans import several_rows
from storelayer.repository._query import columns_of
from storelayer.repository._rows import Rows, session_runner
from storelayer.repository._upsert import upsert_plan

if TYPE_CHECKING:
    from storelayer.session import Session

T = TypeVar("T")

class Repository(Generic[T]):
    """CRUD, filters, pagination, bulk writes, upserts and streaming for ``model``.

    Get one with ``session.repository(User)``, or subclass for domain methods::

        class UserRepository(Repository[User]):
            model = User

            def active(self) -> list[User]:
                return self.list(is_active=True)
    """

    #: The mapped class; a subclass may fix it with ``model = User``.
    model: type[T]
    #: Run each write in a savepoint, so that a caught ``Conflict`` (or any failed
    #: write) undoes that write alone and the unit of work goes on. A subclass may turn
    #: it off on a hot path: a failed write then fails the whole unit
    #: (docs/guide/values-and-errors.md measures the cost).
    savepoint_writes: bool = True

    def __init__(self, session: Session, model: type[T] | None = None) -> None:
        chosen = model if model is not None else getattr(type(self), "model", None)
        if chosen is None:
            raise QueryError(f"{type(self).__name__} needs a model: set `model = ...` on it")
        self.session = session
        self.model = cast("type[T]", chosen)
        self._cols = columns_of(self.model)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.model.__name__}>"

    @property
    def rows(self) -> Rows[T]:
        """The same reads returning ``Row`` objects (``row.name``) instead of ``T``
        instances: no identity map and no change tracking, about the cost of SQLAlchemy
        Core (docs/performance.md)."""
        return Rows(self.model, *session_runner(self.session))

    # -- reads -------------------------------------------------------------------------

    def get(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T | None:
        """The row with primary key ``id`` (a tuple for composite keys), or None.
        ``for_update=True`` locks the row until the unit of work ends; ``options`` are
        loader options (``selectinload(User.projects)``)."""
        return self.session.get(
            self.model,
            id,
            with_for_update=True if for_update else None,
            populate_existing=for_update or bool(options),
            options=options,
        )

    def get_or_raise(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T:
        """Like ``get`` but raises ``NotFound`` naming the model and key."""
        found = self.get(id, for_update=for_update, options=options)
        if found is None:
            raise NotFound(f"{self.model.__name__} with primary key {id!r} does not exist")
        return found

    def get_by_id(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T | None:
        """``get`` under the name other repository libraries give it."""
        return self.get(id, for_update=for_update, options=options)

    def get_by_id_or_raise(
        self, id: Any, *, for_update: bool = False, options: Sequence[Any] = ()
    ) -> T:
        """``get_or_raise`` under the name other repository libraries give it."""
        return self.get_or_raise(id, for_update=for_update, options=options)

    def get_by(self, *expressions: Any, options: Sequence[Any] = (), **filters: Any) -> T | None:
        """The one row matching the filters, None when none does; ``QueryError`` when
        several do (use ``list``)."""
        rows = self.list(*expressions, limit=2, options=options, **filters)
        if len(rows) > 1:
            raise several_rows(self.model.__name__, filters)
        return rows[0] if rows else None

    def list(
        self,
        *expressions: Any,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> list[T]:
        """Rows matching column expressions and ``field__lookup=value`` filters
        (``author__name="x"`` filters through a relationship); ``options`` are loader
        options (``selectinload(Post.comments)``)."""
        kept = None
        if not expressions and not options:
            kept = shaped_rows(self._cols, (self.model,), filters, order_by, limit, offset)
        stmt, params = kept or (
            sql.select_rows(
                self._cols, expressions, filters, order_by=order_by, limit=limit,
                offset=offset, options=options,
            ),
            None,
        )
        return _rows(self.session.scalars(stmt, params), options)

    def count(self, *expressions: Any, **filters: Any) -> int:
        """How many rows match."""
        kept = None if expressions else shaped_count(self._cols, filters)
        stmt, params = kept or (sql.count_rows(self._cols, expressions, filters), None)
        return int(self.session.scalar(stmt, params) or 0)

    def exists(self, *expressions: Any, **filters: Any) -> bool:
        """Whether any row matches."""
        return bool(self.session.scalar(sql.any_row(self._cols, expressions, filters)))

    def page(
        self,
        page: int = 1,
        per_page: int = 20,
        *expressions: Any,
        order_by: str | Sequence[str] | None = None,
        count: bool = True,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> Page[T]:
        """Offset page ``page`` (from 1). Ordered by the primary key unless ``order_by``
        says otherwise; out-of-range pages are empty; ``per_page`` is capped at
        ``MAX_PER_PAGE``; ``count=False`` skips the ``COUNT(*)`` (``total`` is None)."""
        page, per_page = clamp_page(page, per_page)
        rows = self.list(
            *expressions,
            order_by=order_by or list(self._cols.primary_key),
            limit=per_page + 1,
            offset=(page - 1) * per_page,
            options=options,
            **filters,
        )
        total = self.count(*expressions, **filters) if count else None
        return offset_page(rows, page=page, per_page=per_page, total=total)

    def keyset(
        self,
        *expressions: Any,
        after: str | None = None,
        limit: int = 50,
        order_by: str | Sequence[str] | None = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> KeysetPage[T]:
        """Cursor pagination: ``limit`` rows after the signed cursor ``after``, ordered by
        ``order_by`` with the primary key breaking ties. Rows inserted meanwhile never
        shift a page."""
        _, limit = clamp_page(1, limit)
        terms = sql.keyset_terms(self._cols, order_by)
        ordering = sql.ordering_key(terms)
        stmt = sql.select_rows(
            self._cols, expressions, filters, order_by=ordering, limit=limit + 1, options=options
        )
        if after is not None:
            values = decode_cursor(after, ordering, cursor_key(), self._cols.table.fullname)
            stmt = stmt.where(sql.after_row(self._cols, terms, values))
        rows = _rows(self.session.scalars(stmt), options)
        items, has_next = rows[:limit], len(rows) > limit
        cursor = None
        if has_next:
            last = [getattr(items[-1], name) for name, _ in terms]
            cursor = encode_cursor(ordering, last, cursor_key(), self._cols.table.fullname)
        return KeysetPage(items, cursor, has_next)

    def stream(
        self,
        *expressions: Any,
        batch_size: int = 1000,
        order_by: str | Sequence[str] | None = None,
        options: Sequence[Any] = (),
        **filters: Any,
    ) -> Generator[T, None, None]:
        """Every matching row, fetched ``batch_size`` at a time through a server-side
        cursor where the backend has one: memory stays flat on any table size.
        (``joinedload`` of a collection cannot stream: use ``selectinload``.)"""
        sql.check_streamable(self.session.info)
        stmt = sql.select_rows(self._cols, expressions, filters, order_by=order_by,
                               options=options)
        result = self.session.scalars(stmt, execution_options={"yield_per": batch_size})
        try:
            yield from result
        finally:
            result.close()

    # -- writes ------------------------------------------------------------------------
    # Each write runs in a savepoint (where the backend has them): a Conflict or another
    # failure undoes that write alone and leaves the unit of work usable
    # (docs/guide/values-and-errors.md measures what the savepoint costs).

    def create(self, **values: Any) -> T:
        """Insert one row and return it with its generated key. Relationships may be
        given as objects (``create(author=user)``)."""
        self._cols.check_settable(values, purpose="set")
        with self._atomic():
            # made inside the savepoint: a related object given (``author=user``) links
            # the new one into its collection, which must not meet the flush before it
            instance: T = self.model(**values)
            self._cols.check_insert(instance.__dict__)
            self.session.add(instance)
            self.session.flush()
        return instance

    def update(
        self, instance: T | Any, changes: Mapping[str, Any] | None = None, /, **values: Any
    ) -> T:
        """Set the ``changes`` dict and keyword ``values`` on ``instance`` (an instance,
        or a primary key: ``NotFound`` when no row has it) and write them."""
        values = {**(changes or {}), **values}
        self._cols.check_settable(values, purpose="set")
        row = self._row(instance)
        with self._atomic():
            for name, value in values.items():
                setattr(row, name, value)
            self.session.flush()
        return row

    def delete(self, instance: T | Any) -> None:
        """Delete one row: an instance, or a primary key (``NotFound`` when no row has
        it)."""
        row = self._row(instance)
        with self._atomic():
            self.session.delete(row)
            self.session.flush()

    def delete_where(self, *expressions: Any, **filters: Any) -> int:
        """Delete every matching row (a filter is required); returns how many."""
        stmt = sql.delete_rows(self._cols, expressions, filters)
        with self._atomic():
            result = self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0))

    @overload
    def bulk_create(
        self, rows: Iterable[Mapping[str, Any] | T], *, returning: Literal[False] = False
    ) -> int: ...

    @overload
    def bulk_create(
        self, rows: Iterable[Mapping[str, Any] | T], *, returning: Literal[True]
    ) -> builtins.list[T]: ...

    def bulk_create(
        self, rows: Iterable[Mapping[str, Any] | T], *, returning: bool = False
    ) -> int | builtins.list[T]:
        """Insert many rows (dicts or instances) by the backend's fastest path; returns
        how many. ``returning=True`` returns the objects instead, with their generated
        keys, inserted by the ORM in batches (``INSERT ... RETURNING`` where the backend
        has it): slower, see docs/guide/from-the-guides.md for the numbers."""
        if returning:
            return self._create_all(rows)
        values = sql.as_rows(self._cols, rows, purpose="bulk_create", insert=True)
        batches = [self._cols.to_table_rows(group) for _, group in groupby(values, sql.key_set)]
        ops = self.session.backend.ops
        with self._atomic(calls=len(batches)):
            connection = self.session.connection()
            for batch in batches:
                ops.bulk_insert(connection, self._cols.table, batch)
        return len(values)

    def bulk_update(self, rows: Iterable[Mapping[str, Any] | T]) -> int:
        """Update many rows by primary key; each dict carries the key and the new values."""
        values = sql.as_rows(self._cols, rows, purpose="bulk_update")
        for row in values:
            missing = [pk for pk in self._cols.primary_key if pk not in row]
            if missing:
                raise QueryError(f"bulk_update() rows need their primary key {missing}")
        with self._atomic():
            for _, group in groupby(values, key=sql.key_set):
                self.session.execute(update(self.model), list(group))
        return len(values)

    def upsert_many(
        self,
        rows: Iterable[Mapping[str, Any] | T],
        *,
        on: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> int:
        """Insert rows, or update the existing row with the same ``on`` columns (which
        must be a primary key or unique constraint), in one atomic statement per batch.
        ``update`` limits the columns overwritten (never a conflict or primary-key
        column); ``[]`` leaves existing rows alone. Returns the number of rows given."""
        on = [on] if isinstance(on, str) else list(on)
        for name in on:
            self._cols.attribute(name, purpose="upsert on")
        values = sql.as_rows(self._cols, rows, purpose="upsert_many")
        backend = self.session.backend
        conflict = [self._cols.column_keys[name] for name in on]
        plan = list(upsert_plan(self._cols, values, on, update))
        for shape in dict.fromkeys(map(tuple, values)):  # each row may be inserted
            self._cols.check_insert(shape)
        with self._atomic(calls=len(plan)):
            connection = self.session.connection()
            for batch, columns in plan:
                backend.ops.bulk_upsert(connection, self._cols.table, batch, conflict, columns)
        self._reload_loaded()
        return len(values)

    def aggregate(
        self,
        *expressions: Any,
        group_by: str | Sequence[str] | None = None,
        values: Mapping[str, str] | None = None,
        order_by: str | Sequence[str] | None = None,
        **filters: Any,
    ) -> builtins.list[AttributeDict]:
        """Aggregates of the matching rows, one result per group: ``values`` maps each
        name to ``"count"`` or ``"function:column"`` (avg, count, max, min, sum), default
        ``{"count": "count"}``; ``group_by`` names columns. Each result reads as a dict
        and by attribute: ``repo.aggregate(group_by="state")[0]["count"]``."""
        stmt = aggregate_rows(self._cols, expressions, filters, group_by=group_by,
                              values=values, order_by=order_by)
        return as_results(list(self.session.execute(stmt)))

    # -- internals ---------------------------------------------------------------------

    @contextmanager
    def _atomic(self, calls: int = 0) -> Iterator[None]:
        """One write: integrity errors raised as ``Conflict``; inside a savepoint where
        the backend has them, so that a failure undoes this write alone - but for one
        call of a bulk write (``calls``) where the backend makes each call all or
        nothing itself (``Operations.multirow_values``)."""
        session = self.session
        backend = session.backend
        with conflicts_raised(backend):
            session.flush()  # earlier changes: not part of this write's savepoint
            savepoint = self.savepoint_writes and backend.features.savepoints
            if calls == 1 and backend.ops.multirow_values:
                savepoint = False
            if savepoint and not session.info.get(AUTOCOMMIT_KEY):
                with session.begin_nested():
                    yield
            else:
                yield

    def _row(self, target: T | Any) -> T:
        """An instance as it is; a primary key as its row."""
        return target if isinstance(target, self.model) else self.get_or_raise(target)

    def _create_all(self, rows: Iterable[Mapping[str, Any] | T]) -> builtins.list[T]:
        """The rows inserted and returned as objects: dicts of columns by one ORM bulk
        ``INSERT ... RETURNING`` per batch where the database returns rows from an
        executemany; else (and for instances, relationships) by the unit of work."""
        rows = builtins.list(rows)
        dialect = self.session.get_bind().dialect
        if dialect.insert_executemany_returning_sort_by_parameter_order and all(
            isinstance(row, Mapping) and all(k in self._cols.names for k in row) for row in rows
        ):
            values = sql.as_rows(self._cols, rows, purpose="bulk_create", insert=True)
            stmt = insert(self.model).returning(self.model, sort_by_parameter_order=True)
            with self._atomic():
                return builtins.list(self.session.scalars(stmt, values)) if values else []
        instances: list[T] = []
        for row in rows:
            if isinstance(row, Mapping):
                self._cols.check_settable(row, purpose="bulk_create")
                row = self.model(**row)
            elif not isinstance(row, self.model):
                raise QueryError(
                    f"bulk_create: expected dicts or {self.model.__name__} instances, got "
                    f"{type(row).__name__}"
                )
            self._cols.check_insert(row.__dict__)
            instances.append(row)
        # Added before the savepoint: an object linked to a loaded one (``author=ann``)
        # is already in that one's collection, which the flush before the savepoint
        # cascades. So a Conflict on this path is not undone alone (docs/index.md).
        self.session.add_all(instances)
        with self._atomic():
            self.session.flush()
        return instances

    def _flush(self) -> None:
        with conflicts_raised(self.session.backend):
            self.session.flush()

    def _reload_loaded(self) -> None:
        """Reload the instances of this model the session holds: the upsert changed
        their rows behind the ORM's back. Eager (one ``SELECT`` per 500 instances), not
        expiry, so that no attribute access does I/O later (the async API forbids it)."""
        keys = [
            key[1] for key in self.session.identity_map.keys() if key[0] is self.model  # noqa: SIM118
        ]
        for start in range(0, len(keys), 500):
            stmt = sql.reload_rows(self._cols, keys[start : start + 500])
            self.session.execute(stmt, execution_options={"populate_existing": True}).all()


def _rows(result: Any, options: Sequence[Any]) -> list[Any]:
    """The rows of ``result``; made unique when loader options may repeat them (a
    ``joinedload`` of a collection)."""
    return list(result.unique() if options else result)
