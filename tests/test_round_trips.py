"""What a unit of work costs on the wire, counted by a proxy between the pool and the
server: a read that needs no transaction is one round trip on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import String
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Database
from storelayer.testing import Provisioner, provision_or_skip
from storelayer.testing.proxy import FaultProxy, ProxyFactory

READS = 50


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "round_trip_things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


@pytest.fixture(params=["postgresql", "mysql"])
def proxied(
    request: pytest.FixtureRequest, storelayer_provisioner: Provisioner, fault_proxy: ProxyFactory
) -> Iterator[tuple[FaultProxy, Database]]:
    backend = storelayer.get_plugin_manager().backends()[request.param]
    url: URL = provision_or_skip(storelayer_provisioner, backend)
    with storelayer.connect(url) as setup:
        Base.metadata.create_all(setup.engine)
        with setup.session() as s:
            s.repository(Thing).create(id=1, name="one")
    proxy = fault_proxy(url)
    db = storelayer.connect(proxy.url(url), pool_size=1, max_overflow=0)
    yield proxy, db
    db.dispose()


def sends_per_read(proxy: FaultProxy, db: Database, *, autocommit: bool) -> float:
    with db.read_session(autocommit=autocommit) as s:  # connect and warm up
        s.repository(Thing).get(1)
    before = proxy.client_sends
    for _ in range(READS):
        with db.read_session(autocommit=autocommit) as s:
            assert s.repository(Thing).get(1) is not None
    return (proxy.client_sends - before) / READS


def test_reads_cost_what_the_docs_say(proxied: tuple[FaultProxy, Database]) -> None:
    proxy, db = proxied
    expected = {"postgresql": (3, 1), "mysql": (2, 2)}[db.backend.name]
    in_transaction = sends_per_read(proxy, db, autocommit=False)
    autocommit = sends_per_read(proxy, db, autocommit=True)
    # no pre-ping on a connection used a moment ago, no ROLLBACK after a COMMIT
    assert (in_transaction, autocommit) == expected


def sends_per_write(proxy: FaultProxy, db: Database, isolation: str | None) -> float:
    """Client sends of one unit that reads a row and updates it, at ``isolation``."""

    def unit(n: int) -> None:
        with db.session(isolation=isolation) as s:
            things = s.repository(Thing)
            things.update(things.get_or_raise(1), name=f"n{n}")

    unit(0)  # connect and warm up
    before = proxy.client_sends
    for n in range(READS):
        unit(n + 1)
    return (proxy.client_sends - before) / READS


def test_an_isolation_level_costs_at_most_one_round_trip(
    proxied: tuple[FaultProxy, Database],
) -> None:
    proxy, db = proxied
    sends = {level: sends_per_write(proxy, db, level) for level in (None, "serializable")}
    print(f"\n{db.backend.name} round trips per read-then-update unit: {sends}")
    # PostgreSQL sends the level with BEGIN; MySQL/MariaDB one SET TRANSACTION before
    # the unit's first statement (SQLAlchemy's per-checkout switch cost 4: docs/performance.md)
    extra = {"postgresql": 0, "mysql": 1}[db.backend.name]
    assert sends["serializable"] == sends[None] + extra


def sends_per_bulk_write(proxy: FaultProxy, db: Database, method: str) -> float:
    """Client sends of one unit that writes 100 rows by one bulk call."""

    def unit(n: int) -> None:
        rows = [{"id": 1000 * n + i, "name": f"r{i}"} for i in range(100)]
        with db.session() as s:
            things = s.repository(Thing)
            if method == "bulk_create":
                things.bulk_create(rows)
            else:
                things.upsert_many(rows, on=["id"])

    unit(1)  # connect and warm up
    before = proxy.client_sends
    for n in range(READS):
        unit(n + 2)
    return (proxy.client_sends - before) / READS


@pytest.mark.parametrize("method", ["bulk_create", "upsert_many"])
def test_a_bulk_write_of_one_call_takes_no_savepoint_on_mysql(
    proxied: tuple[FaultProxy, Database], method: str
) -> None:
    """MySQL sends it as one statement, which InnoDB undoes alone if it fails: the
    statement, the commit marker, COMMIT. PostgreSQL, where a failed statement ends
    the transaction, keeps the savepoint: BEGIN, SAVEPOINT, the write (a bulk_create's
    COPY sends its rows after its statement), RELEASE, the commit marker, COMMIT
    (docs/performance.md, "Round trips per unit of work")."""
    proxy, db = proxied
    copy = method == "bulk_create"
    expected = {"postgresql": 7 if copy else 6, "mysql": 3}[db.backend.name]
    assert sends_per_bulk_write(proxy, db, method) == expected
