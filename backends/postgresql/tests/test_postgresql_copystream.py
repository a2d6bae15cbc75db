"""``storelayer copy``'s writing on PostgreSQL: one ``COPY`` for a stream of batches, a
batch it cannot encode through the generic path in the same transaction, an error in
the stream raised as itself; foreign keys, keys and indexes dropped while rows load and
back, checked, before the transaction ends."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    event,
    exc,
    select,
    text,
)
from sqlalchemy.engine import Connection

import storelayer
from storelayer import Database
from storelayer.backend.concerns import TextedBatch
from storelayer.backup.counts import TableChecksum
from storelayer.copy.checksum import add_columns
from storelayer.testing import Provisioner, provision_or_skip
from storelayer_postgresql.copystream import _encoder

metadata = MetaData()
parent = Table("cs_parent", metadata, Column("id", Integer, primary_key=True))
child = Table(
    "cs_child", metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer, ForeignKey("cs_parent.id", ondelete="CASCADE"),
           nullable=False),
    Column("note", Text),
    Column("tags", ARRAY(Integer)),
    Column("code", Integer, unique=True),
    Index("cs_child_note", "note", postgresql_where=text("note IS NOT NULL")),
)
FOREIGN_KEY = "FOREIGN KEY (parent_id) REFERENCES cs_parent(id) ON DELETE CASCADE"


@pytest.fixture
def database(storelayer_provisioner: Provisioner) -> Iterator[Database]:
    backend = storelayer.get_plugin_manager().backends()["postgresql"]
    db = storelayer.connect(provision_or_skip(storelayer_provisioner, backend))
    metadata.create_all(db.engine)
    yield db
    metadata.drop_all(db.engine)
    db.dispose()


def _foreign_keys(connection: Connection) -> list[str]:
    query = text(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = 'cs_child'::regclass"
    )
    return list(connection.execute(query).scalars())


def _batch(ids: range, tags: Any, codes: Any = None) -> list[list[Any]]:
    codes = list(ids) if codes is None else codes
    return [list(ids), [1] * len(ids), [f"n\t{i}\\" for i in ids], [tags] * len(ids), codes]


def _definitions(connection: Connection) -> list[str]:
    """Every constraint and index of the two tables, as PostgreSQL would make it again."""
    query = text(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid IN ('cs_parent'::regclass, 'cs_child'::regclass) "
        "UNION ALL SELECT pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid IN ('cs_parent'::regclass, 'cs_child'::regclass)"
    )
    return sorted(connection.execute(query).scalars())


def test_a_batch_copy_cannot_encode_goes_the_generic_way(database: Database) -> None:
    statements: list[str] = []  # what goes through SQLAlchemy (COPY does not)
    event.listen(database.engine, "before_cursor_execute",
                 lambda *a: statements.append(a[2].split()[0]))
    batches = [_batch(range(1, 4), None), _batch(range(4, 6), [1, 2]), _batch(range(6, 9), None)]
    ops = database.backend.ops
    with database.engine.begin() as connection:
        ops.bulk_insert(connection, parent, [{"id": 1}])
        ops.insert_columns(connection, child, iter(batches))
    with database.engine.connect() as connection:
        got = connection.execute(select(child).order_by(child.c.id)).all()
    assert [tuple(r) for r in got] == [
        (i, 1, f"n\t{i}\\", [1, 2] if i in (4, 5) else None, i) for i in range(1, 9)
    ]
    assert statements.count("INSERT") == 1  # the one batch of arrays


def test_an_error_in_the_stream_is_raised_as_itself(database: Database) -> None:
    class Stop(Exception):
        pass

    def batches() -> Iterator[list[list[Any]]]:
        yield _batch(range(1, 3), None)
        raise Stop

    ops = database.backend.ops
    with pytest.raises(Stop), database.engine.begin() as connection:
        ops.bulk_insert(connection, parent, [{"id": 1}])
        ops.insert_columns(connection, child, batches())
    with database.engine.connect() as connection:
        assert connection.execute(select(child)).all() == []


def test_foreign_keys_come_back_as_they_were(database: Database) -> None:
    ops = database.backend.ops
    with database.engine.begin() as connection:
        with ops.loading(connection, [parent, child]):
            assert _foreign_keys(connection) == []
            ops.insert_columns(connection, child, iter([_batch(range(1, 3), None)]))
            ops.insert_columns(connection, parent, iter([[[1]]]))
        assert _foreign_keys(connection) == [FOREIGN_KEY]
    with database.engine.connect() as connection:
        assert _foreign_keys(connection) == [FOREIGN_KEY]


def test_a_row_that_breaks_a_foreign_key_fails_the_block(database: Database) -> None:
    ops = database.backend.ops
    with (
        pytest.raises(exc.IntegrityError),
        database.engine.begin() as connection,
        ops.loading(connection, [parent, child]),
    ):
        ops.insert_columns(connection, child, iter([_batch(range(1, 3), None)]))
    with database.engine.connect() as connection:
        assert _foreign_keys(connection) == [FOREIGN_KEY]
        assert connection.execute(select(child)).all() == []


def test_a_foreign_key_this_role_cannot_add_again_stays(database: Database) -> None:
    role = f"copystream_guest_{os.getpid()}"
    with database.engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{role}"')
        connection.exec_driver_sql(f'GRANT SELECT, INSERT ON cs_parent, cs_child TO "{role}"')
    ops = database.backend.ops
    try:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
            with ops.loading(connection, [parent, child]):
                assert _foreign_keys(connection) == [FOREIGN_KEY]
                ops.insert_columns(connection, parent, iter([[[1]]]))
                ops.insert_columns(connection, child, iter([_batch(range(1, 3), None)]))
        with database.engine.connect() as connection:
            assert len(connection.execute(select(child)).all()) == 2
    finally:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(f'REVOKE ALL ON cs_parent, cs_child FROM "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')


def test_the_checksums_texts_are_the_copy_text_they_replace(database: Database) -> None:
    # The copy hands over the texts its checksum made (TextedBatch.texts, None at a
    # NULL's place): COPY sends them as they are - naive datetimes too, whose bind
    # processor leaves them unchanged - and the text is the one it would have made.
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 6)
    table = Table(
        "cs_texts", MetaData(), Column("id", Integer, primary_key=True),
        Column("at", DateTime), Column("weight", Float), Column("price", Numeric(10, 2)),
        Column("note", Text),
    )
    columns: list[list[Any]] = [
        [1, 2, 3], [when, None, when.replace(microsecond=0)], [None, 1.5, 1e-7],
        [Decimal("1.10"), None, Decimal("-0.00")], ["a\tb", None, "c\\d\r\n"],
    ]
    with database.engine.connect() as connection:
        encode = _encoder(connection, table)
        plain = encode(columns)
        batch = TextedBatch(columns)
        batch.texts = add_columns(TableChecksum(), columns)
        assert [t is not None for t in batch.texts] == [True, True, True, True, False]
        assert encode(batch) == plain
        assert plain.splitlines()[1] == "2\t\\N\t1.5\t\\N\t\\N"
        batch.texts[1] = ["marked", None, "marked"]  # sent as they are
        assert encode(batch).count("marked") == 2


def test_keys_and_indexes_come_back_as_they_were(database: Database) -> None:
    ops = database.backend.ops
    with database.engine.connect() as connection:
        before = _definitions(connection)
    assert len(before) == 8  # 2 primary keys, 1 unique, 1 foreign key; their 3 indexes, 1
    with database.engine.begin() as connection:
        with ops.loading(connection, [parent, child]):
            assert _definitions(connection) == []  # nothing kept up row by row
            ops.insert_columns(connection, parent, iter([[[1, 2]]]))
            ops.insert_columns(connection, child, iter([_batch(range(1, 4), None)]))
        assert _definitions(connection) == before
    with database.engine.connect() as connection:
        assert _definitions(connection) == before


def test_a_row_that_repeats_a_key_fails_the_block(database: Database) -> None:
    ops = database.backend.ops
    with database.engine.connect() as connection:
        before = _definitions(connection)
    with (
        pytest.raises(exc.IntegrityError, match="cs_child_code_key"),
        database.engine.begin() as connection,
        ops.loading(connection, [parent, child]),
    ):
        ops.insert_columns(connection, parent, iter([[[1]]]))
        ops.insert_columns(connection, child, iter([_batch(range(1, 3), None, [5, 5])]))
    with database.engine.connect() as connection:
        assert _definitions(connection) == before
        assert connection.execute(select(child)).all() == []


def test_a_key_another_tables_foreign_key_needs_stays(database: Database) -> None:
    ops = database.backend.ops
    with database.engine.connect() as connection:
        before = _definitions(connection)
    with database.engine.begin() as connection:
        with ops.loading(connection, [parent]):  # cs_child's foreign key stays, on cs_parent
            kept = _definitions(connection)
            assert "PRIMARY KEY (id)" in kept and FOREIGN_KEY in kept
            ops.insert_columns(connection, parent, iter([[[1]]]))
        assert _definitions(connection) == before


def test_a_column_of_naive_datetimes_skips_only_a_processor_that_changes_nothing() -> None:
    from storelayer_postgresql.copystream import _bound

    def to_utc(value: Any) -> Any:
        return None if value is None else value.astimezone(datetime.timezone.utc)

    naive = [datetime.datetime(2024, 1, 1, 12), None]
    east = datetime.timezone(datetime.timedelta(hours=3))
    aware = [datetime.datetime(2024, 1, 1, 12, tzinfo=east), *naive[:1]]
    assert _bound(to_utc, naive, naive=True) == naive  # as is: nothing to change
    assert _bound(to_utc, aware, naive=True)[0].hour == 9  # one aware: every value bound
    assert _bound(str, naive[:1], naive=False) == ["2024-01-01 12:00:00"]
