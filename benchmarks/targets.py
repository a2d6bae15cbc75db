"""Benchmark databases: where each backend's ``storelayer_bench`` lives, and creating
and dropping it. Only the database named ``storelayer_bench`` is ever touched."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

DATABASE = "storelayer_bench"
BACKENDS = ("sqlite", "postgresql", "mysql")
DEFAULT_SERVERS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432",
    "mysql": "mysql://root@127.0.0.1:3306",
}


@dataclass(frozen=True)
class Target:
    """One backend's benchmark database, described for every kind of client."""

    backend: str
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    path: str = ""  # SQLite file
    name: str = DATABASE  # the database on a server

    @property
    def database(self) -> str:
        """The database name (the file path for SQLite)."""
        return self.path if self.backend == "sqlite" else self.name

    def url(self) -> URL:
        """SQLAlchemy URL with an explicit driver (psycopg2, PyMySQL, pysqlite)."""
        if self.backend == "sqlite":
            return URL.create("sqlite+pysqlite", database=self.path)
        driver = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}[self.backend]
        query = {"charset": "utf8mb4"} if self.backend == "mysql" else {}
        return URL.create(
            driver, username=self.user, password=self.password or None, host=self.host,
            port=self.port, database=self.name, query=query,
        )

    def storelayer_url(self) -> str:
        """The URL a user would paste into ``DATABASE_URL`` (no driver named)."""
        url = self.url()
        plain = url.set(drivername=self.backend, query={})
        return plain.render_as_string(hide_password=False)


def make_target(
    backend: str, workdir: Path, server: str | None = None, name: str = DATABASE
) -> Target:
    """The ``Target`` for ``backend``; ``server`` overrides the local default server URL;
    ``name`` is the database's (the SQLite file's) name."""
    if backend == "sqlite":
        return Target("sqlite", path=str(workdir / f"{name}.db"), name=name)
    if backend not in DEFAULT_SERVERS:
        raise SystemExit(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    url = make_url(server or DEFAULT_SERVERS[backend])
    return Target(
        backend, host=url.host or "127.0.0.1", port=url.port or 0,
        user=url.username or "", password=url.password or "", name=name,
    )


def create_database(target: Target) -> None:
    """Drop and recreate the benchmark database (for SQLite: the file, in WAL mode)."""
    if target.backend == "sqlite":
        _remove_sqlite_files(Path(target.path))
        Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(target.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        return
    _server_admin(target, [f"DROP DATABASE IF EXISTS {target.name}", _create_sql(target)])


def drop_database(target: Target) -> None:
    """Remove the benchmark database."""
    if target.backend == "sqlite":
        _remove_sqlite_files(Path(target.path))
    else:
        _server_admin(target, [f"DROP DATABASE IF EXISTS {target.name}"])


def _create_sql(target: Target) -> str:
    if target.backend == "mysql":
        return f"CREATE DATABASE {target.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    return f"CREATE DATABASE {target.name} ENCODING 'UTF8'"


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _server_admin(target: Target, statements: list[str]) -> None:
    """Run DDL on the server's maintenance database, outside a transaction."""
    if target.backend == "postgresql":
        import psycopg2

        pg = psycopg2.connect(
            host=target.host, port=target.port, user=target.user,
            password=target.password or None, dbname="postgres",
        )
        pg.autocommit = True
        try:
            with pg.cursor() as cur:
                for sql in statements:
                    # FORCE ends stale sessions of an interrupted earlier run (PG 13+).
                    cur.execute(sql + " WITH (FORCE)" if sql.startswith("DROP") else sql)
        finally:
            pg.close()
        return
    import pymysql

    my = pymysql.connect(
        host=target.host, port=target.port, user=target.user, password=target.password,
        autocommit=True,
    )
    try:
        with my.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        my.close()
