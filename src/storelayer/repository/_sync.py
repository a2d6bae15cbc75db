"""``Repository[T]``: the generic repository of one mapped class in one session."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy import update

from storelayer._conflicts import conflicts_raised
from storelayer._engines import AUTOCOMMIT_KEY
from storelayer.errors import NotFound, QueryError
from storelayer.repository import _statements as sql
from storelayer.repository._cursor import cursor_key, decode_cursor, encode_cursor
from storelayer.repository._page import KeysetPage, Page, clamp_page, offset_page
from storelayer.repository._query import ModelColumns
from storelayer.repository._upsert import upsert_plan

if TYPE_CHECKING:
    from storelayer.session import Session

T = TypeVar("T")

_COLUMNS: dict[type[Any], ModelColumns] = {}


def columns_of(model: type[Any]) -> ModelColumns:
    """The checked column names of ``model``, computed once per model."""
    found = _COLUMNS.get(model)
    if found is None:
        found = _COLUMNS[model] = ModelColumns(model)
    return found


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

    # -- reads -------------------------------------------------------------------------

    def get(self, id: Any, *, for_update: bool = False) -> T | None:
        """The row with primary key ``id`` (a tuple for composite keys), or None.
        ``for_update=True`` locks the row until the unit of work ends."""
        return self.session.get(
            self.model,
            id,
            with_for_update=True if for_update else None,
            populate_existing=for_update,
        )

    def get_or_raise(self, id: Any, *, for_update: bool = False) -> T:
        """Like ``get`` but raises ``NotFound`` naming the model and key."""
        found = self.get(id, for_update=for_update)
        if found is None:
            raise NotFound(f"{self.model.__name__} with primary key {id!r} does not exist")
        return found

    def get_by(self, *expressions: Any, **filters: Any) -> T | None:
        """The one row matching the filters, None when none does; ``QueryError`` when
        several do (use ``list``)."""
        rows = self.list(*expressions, limit=2, **filters)
        if len(rows) > 1:
            raise QueryError(
                f"get_by() found several {self.model.__name__} rows for {filters or expressions}; "
                "use list(), or filter on a unique column"
            )
        return rows[0] if rows else None

    def list(
        self,
        *expressions: Any,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> list[T]:
        """Rows matching column expressions and ``field__lookup=value`` filters."""
        stmt = sql.select_rows(
            self._cols, expressions, filters, order_by=order_by, limit=limit, offset=offset
        )
        return list(self.session.scalars(stmt))

    def count(self, *expressions: Any, **filters: Any) -> int:
        """How many rows match."""
        return int(self.session.scalar(sql.count_rows(self._cols, expressions, filters)) or 0)

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
        **filters: Any,
    ) -> KeysetPage[T]:
        """Cursor pagination: ``limit`` rows after the signed cursor ``after``, ordered by
        ``order_by`` with the primary key breaking ties. Rows inserted meanwhile never
        shift a page."""
        _, limit = clamp_page(1, limit)
        terms = sql.keyset_terms(self._cols, order_by)
        ordering = sql.ordering_key(terms)
        stmt = sql.select_rows(self._cols, expressions, filters, order_by=ordering, limit=limit + 1)
        if after is not None:
            values = decode_cursor(after, ordering, cursor_key(), self._cols.table.fullname)
            stmt = stmt.where(sql.after_row(self._cols, terms, values))
        rows = list(self.session.scalars(stmt))
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
        **filters: Any,
    ) -> Generator[T, None, None]:
        """Every matching row, fetched ``batch_size`` at a time through a server-side
        cursor where the backend has one: memory stays flat on any table size."""
        sql.check_streamable(self.session.info)
        stmt = sql.select_rows(self._cols, expressions, filters, order_by=order_by)
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
        """Insert one row and return it with its generated key."""
        self._cols.check_values(values, purpose="set")
        instance: T = self.model(**values)
        self._cols.check_insert(instance.__dict__)
        with self._atomic():
            self.session.add(instance)
            self.session.flush()
        return instance

    def update(self, instance: T, **values: Any) -> T:
        """Set ``values`` on ``instance`` and write them."""
        self._cols.check_values(values, purpose="set")
        with self._atomic():
            for name, value in values.items():
                setattr(instance, name, value)
            self.session.flush()
        return instance

    def delete(self, instance: T) -> None:
        """Delete one row."""
        with self._atomic():
            self.session.delete(instance)
            self.session.flush()

    def delete_where(self, *expressions: Any, **filters: Any) -> int:
        """Delete every matching row (a filter is required); returns how many."""
        stmt = sql.delete_rows(self._cols, expressions, filters)
        with self._atomic():
            result = self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0))

    def bulk_create(self, rows: Iterable[Mapping[str, Any] | T]) -> int:
        """Insert many rows (dicts or instances) by the backend's fastest path; returns
        how many. Objects are not loaded back: use ``list`` to read them."""
        values = sql.as_rows(self._cols, rows, purpose="bulk_create", insert=True)
        with self._atomic():
            connection = self.session.connection()
            for _, group in groupby(values, key=sql.key_set):
                table_rows = [self._cols.to_table(row) for row in group]
                self.session.backend.ops.bulk_insert(connection, self._cols.table, table_rows)
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
        for row in values:  # each row may be inserted
            self._cols.check_insert(row)
        with self._atomic():
            connection = self.session.connection()
            for batch, columns in plan:
                backend.ops.bulk_upsert(connection, self._cols.table, batch, conflict, columns)
        self._reload_loaded()
        return len(values)

    # -- internals ---------------------------------------------------------------------

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """One write: integrity errors raised as ``Conflict``; inside a savepoint where
        the backend has them, so that a failure undoes this write alone."""
        session = self.session
        with conflicts_raised(session.backend):
            session.flush()  # earlier changes: not part of this write's savepoint
            savepoint = self.savepoint_writes and session.backend.features.savepoints
            if savepoint and not session.info.get(AUTOCOMMIT_KEY):
                with session.begin_nested():
                    yield
            else:
                yield

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
