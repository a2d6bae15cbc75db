"""The baseline: each DBAPI driver used directly, on its fastest path.

- sqlite3: ``executemany`` in one transaction; upsert with ``ON CONFLICT`` executemany.
- psycopg2: ``COPY ... FROM STDIN`` (CSV built in a ``StringIO``) for inserts;
  ``execute_values`` with ``INSERT ... ON CONFLICT`` for upserts; a named (server-side)
  cursor for streaming.
- PyMySQL: ``executemany`` (PyMySQL rewrites ``INSERT ... VALUES`` into multi-row
  statements, also with ``ON DUPLICATE KEY UPDATE``); ``SSCursor`` for streaming.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any

from benchmarks.impl_base import Implementation, Unavailable
from benchmarks.schema import (
    INSERT_COLUMNS,
    SELECT_COLUMNS,
    SQLITE_PRAGMAS,
    TABLE,
    UPDATE_COLUMNS,
)
from benchmarks.targets import Target
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

COLUMNS = ", ".join(INSERT_COLUMNS)
SELECT = f"SELECT {', '.join(SELECT_COLUMNS)} FROM {TABLE}"


def _sql(paramstyle: str) -> dict[str, str]:
    """Every statement, with ``?`` or ``%s`` placeholders."""
    p = "?" if paramstyle == "qmark" else "%s"
    values = ", ".join([p] * len(INSERT_COLUMNS))
    return {
        "insert": f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({values})",
        "get": f"{SELECT} WHERE id = {p}",
        "page": f"{SELECT} WHERE category = {p} AND price >= {p} "
        f"ORDER BY id DESC LIMIT {p} OFFSET {p}",
        "count": f"SELECT count(*) FROM {TABLE} WHERE category = {p} AND quantity >= {p}",
    }


class RawImplementation(Implementation):
    """Shared logic of the three drivers: per-call transactions with ``commit()``."""

    name = "raw"
    paramstyle = "format"
    conn: Any

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.sql = _sql(self.paramstyle)

    def close(self) -> None:
        self.conn.close()

    def _tuples(self, rows: list[Row]) -> list[tuple[Any, ...]]:
        return [
            (r["name"], r["category"], r["price"], r["quantity"], r["created_at"]) for r in rows
        ]

    def insert(self, rows: list[Row]) -> None:
        cur = self.conn.cursor()
        cur.executemany(self.sql["insert"], self._tuples(rows))
        cur.close()
        self.conn.commit()

    def _fetch(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        """The rows of one statement, in its own transaction."""
        cur = self.conn.cursor()
        cur.execute(self.sql[statement], params)
        rows = cur.fetchall()
        cur.close()
        self.conn.commit()
        return list(rows)

    def get_one(self, id_: int) -> int | None:
        rows = self._fetch("get", (id_,))
        return rows[0][4] if rows else None

    def _price(self, value: Any) -> Any:
        return value

    def page(self, q: PageQuery) -> list[int]:
        params = (q.category, self._price(q.min_price), q.limit, q.offset)
        return [row[0] for row in self._fetch("page", params)]

    def count(self, q: CountQuery) -> int:
        count: int = self._fetch("count", (q.category, q.min_quantity))[0][0]
        return count

    def _stream_cursor(self, batch_size: int) -> Any:
        return self.conn.cursor()

    def stream(self, batch_size: int) -> Expected:
        rows = total = 0
        cur = self._stream_cursor(batch_size)
        cur.execute(SELECT)
        while batch := cur.fetchmany(batch_size):
            rows += len(batch)
            total += sum(row[4] for row in batch)
        cur.close()
        self.conn.commit()
        return Expected(rows, total)


class RawSQLite(RawImplementation):
    """sqlite3 with the same pragmas every other implementation gets."""

    paramstyle = "qmark"

    def open(self) -> None:
        self.conn = sqlite3.connect(self.target.path, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            self.conn.execute(pragma)

    def _tuples(self, rows: list[Row]) -> list[tuple[Any, ...]]:
        # sqlite3 binds neither Decimal nor (from 3.12) datetime: store what
        # SQLAlchemy's SQLite types store, a float and an ISO text.
        return [
            (r["name"], r["category"], float(r["price"]), r["quantity"],
             r["created_at"].isoformat(" ", "microseconds"))
            for r in rows
        ]

    def _price(self, value: Any) -> Any:
        return float(value)

    def upsert(self, rows: list[Row]) -> None:
        sets = ", ".join(f"{c} = excluded.{c}" for c in UPDATE_COLUMNS)
        sql = f"{self.sql['insert']} ON CONFLICT (name) DO UPDATE SET {sets}"
        self.conn.executemany(sql, self._tuples(rows))
        self.conn.commit()


class RawPostgres(RawImplementation):
    """psycopg2: COPY for inserts, execute_values for upserts."""

    def open(self) -> None:
        import psycopg2

        t = self.target
        self.conn = psycopg2.connect(
            host=t.host, port=t.port, user=t.user, password=t.password or None,
            dbname=t.database,
        )

    def insert(self, rows: list[Row]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(self._tuples(rows))
        buffer.seek(0)
        with self.conn.cursor() as cur:
            cur.copy_expert(f"COPY {TABLE} ({COLUMNS}) FROM STDIN WITH (FORMAT csv)", buffer)
        self.conn.commit()

    def upsert(self, rows: list[Row]) -> None:
        from psycopg2.extras import execute_values

        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATE_COLUMNS)
        sql = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES %s ON CONFLICT (name) DO UPDATE SET {sets}"
        with self.conn.cursor() as cur:
            execute_values(cur, sql, self._tuples(rows), page_size=1000)
        self.conn.commit()

    def _stream_cursor(self, batch_size: int) -> Any:
        cur = self.conn.cursor(name="bench_stream")
        cur.itersize = batch_size
        return cur


class RawMySQL(RawImplementation):
    """PyMySQL: multi-row executemany, unbuffered cursor for streaming."""

    def open(self) -> None:
        import pymysql

        t = self.target
        self.conn = pymysql.connect(
            host=t.host, port=t.port, user=t.user, password=t.password, database=t.database,
            charset="utf8mb4",
        )

    def upsert(self, rows: list[Row]) -> None:
        sets = ", ".join(f"{c} = VALUES({c})" for c in UPDATE_COLUMNS)
        with self.conn.cursor() as cur:
            cur.executemany(f"{self.sql['insert']} ON DUPLICATE KEY UPDATE {sets}",
                            self._tuples(rows))
        self.conn.commit()

    def _stream_cursor(self, batch_size: int) -> Any:
        import pymysql.cursors

        return self.conn.cursor(pymysql.cursors.SSCursor)


def raw_implementation(target: Target) -> RawImplementation:
    """The raw-driver implementation for ``target``'s backend."""
    classes: dict[str, type[RawImplementation]] = {
        "sqlite": RawSQLite, "postgresql": RawPostgres, "mysql": RawMySQL,
    }
    if target.backend not in classes:
        raise Unavailable(f"no raw driver path for {target.backend}")
    return classes[target.backend](target)
