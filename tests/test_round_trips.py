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
