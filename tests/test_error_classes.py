"""storelayer's errors are SQLAlchemy's too where SQLAlchemy has the class: code written
against SQLAlchemy (``except IntegrityError``) keeps catching them, on every backend and
through both APIs, and they are translated once, never twice."""

from __future__ import annotations

import pickle

import pytest
from sqlalchemy import String, exc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer import (
    Conflict,
    ConnectionFailed,
    Database,
    NotFound,
    PoolExhausted,
    StorelayerError,
)


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "error_things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.fixture
def things(database: Database) -> Database:
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    with database.session() as s:
        s.repository(Thing).create(name="taken")
    return database


@pytest.mark.api_modes
def test_a_conflict_is_caught_as_an_integrity_error(things: Database) -> None:
    with pytest.raises(exc.IntegrityError) as caught, things.session() as s:
        s.repository(Thing).create(name="taken")
    error = caught.value
    assert isinstance(error, Conflict) and isinstance(error, StorelayerError)
    # translated once: the cause is the driver's error wrapped by SQLAlchemy, not a Conflict
    assert not isinstance(error.__cause__, Conflict)
    assert isinstance(error.__cause__, exc.IntegrityError)
    assert error.orig is error.__cause__.orig and error.connection_invalidated is False
    assert "[SQL" not in str(error) and "sqlalche.me" not in str(error)


def test_a_conflict_at_commit_is_translated_once(things: Database) -> None:
    with pytest.raises(Conflict) as caught, things.session() as s:
        s.add(Thing(name="taken"))  # flushed by the COMMIT, outside the repository
    assert type(caught.value.__cause__) is exc.IntegrityError


def test_not_found_is_no_result_found(things: Database) -> None:
    with things.read_session() as s, pytest.raises(exc.NoResultFound):
        s.repository(Thing).get_or_raise(404)


@pytest.mark.parametrize(
    ("error", "twin"),
    [
        (Conflict("write violates a constraint", "uq_x"), exc.IntegrityError),
        (NotFound("no such row"), exc.NoResultFound),
        (PoolExhausted("pool full", 5, 10, 30.0), exc.TimeoutError),
        (ConnectionFailed("cannot connect", transient=False), exc.OperationalError),
    ],
)
def test_each_twin_keeps_its_message_attributes_and_pickles(
    error: StorelayerError, twin: type[Exception]
) -> None:
    assert isinstance(error, twin)
    assert str(error) == error.args[0]
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert copy.__dict__.keys() == error.__dict__.keys()
