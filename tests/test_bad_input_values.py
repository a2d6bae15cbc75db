"""One mistake, one error, on every backend and through both APIs: a table of bad
inputs (too long, out of range, NULL, not an enum value, NUL, NaN, a write in a read
session, an upsert rewriting its key, a cursor of another table), each asserting the
exact storelayer error class, a message naming the column and never the value, and no
change to the stored rows. SQLite would store most of these values; the repository
refuses them there as the servers do, and on every row of a bulk call."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Enum, Float, Integer, Numeric, SmallInteger, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer import Database, InvalidValue, QueryError, ReadOnlySession, StorelayerError

pytestmark = pytest.mark.api_modes

SECRET = "Jane-Private-7731"


class Mood(enum.Enum):
    CALM = "calm"
    GRUMPY = "grumpy"


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "bad_input_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    handle: Mapped[str] = mapped_column(String(20), unique=True)
    small: Mapped[int | None] = mapped_column(SmallInteger)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    ratio: Mapped[float | None] = mapped_column(Float)
    mood: Mapped[Mood | None] = mapped_column(Enum(Mood, name="bad_input_mood"))


class Ledger(Base):
    __tablename__ = "bad_input_ledgers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    handle: Mapped[str] = mapped_column(String(20))


def ok(i: int, **values: Any) -> dict[str, Any]:
    return {"id": i, "handle": f"h{i}", "small": 1, "amount": Decimal("1.50"), "ratio": 0.5,
            "mood": Mood.CALM, **values}  # fmt: skip


def in_session(action: Callable[[Any], Any]) -> Callable[[Database], None]:
    def run(db: Database) -> None:
        with db.session() as s:
            action(s.repository(Account))

    return run


def in_read_session(action: Callable[[Any], Any]) -> Callable[[Database], None]:
    def run(db: Database) -> None:
        with db.read_session() as s:
            action(s)

    return run


def foreign_cursor(db: Database) -> None:
    with db.read_session() as s:
        cursor = s.repository(Ledger).keyset(limit=1).next_cursor
        s.repository(Account).keyset(after=cursor, limit=1)


TOO_LONG = SECRET * 2
#: (case, action, error class, the column the message names or None)
CASES: list[tuple[str, Callable[[Database], None], type[StorelayerError], str | None]] = [
    ("over-long string", in_session(lambda r: r.create(**ok(3, handle=TOO_LONG))),
     InvalidValue, "Account.handle"),
    ("over-long string, 2nd row of bulk_create",
     in_session(lambda r: r.bulk_create([ok(3), ok(4, handle=TOO_LONG)])), InvalidValue,
     "Account.handle"),
    ("over-long string, 2nd row of upsert_many",
     in_session(lambda r: r.upsert_many([ok(1), ok(4, handle=TOO_LONG)], on=["id"])),
     InvalidValue, "Account.handle"),
    ("over-long string, 2nd row of bulk_update",
     in_session(lambda r: r.bulk_update([{"id": 1, "handle": "x"},
                                         {"id": 2, "handle": TOO_LONG}])),
     InvalidValue, "Account.handle"),
    ("16-bit integer out of range", in_session(lambda r: r.create(**ok(3, small=40_000))),
     InvalidValue, "Account.small"),
    ("Numeric(8, 2) out of range",
     in_session(lambda r: r.create(**ok(3, amount=Decimal("1234567.891")))), InvalidValue,
     "Account.amount"),
    ("Numeric rounding up out of range",
     in_session(lambda r: r.create(**ok(3, amount=Decimal("999999.995")))), InvalidValue,
     "Account.amount"),
    ("decimal infinity", in_session(lambda r: r.create(**ok(3, amount=Decimal("Infinity")))),
     InvalidValue, "Account.amount"),
    ("float NaN", in_session(lambda r: r.create(**ok(3, ratio=float("nan")))), InvalidValue,
     "Account.ratio"),
    ("float infinity, 2nd row of bulk_create",
     in_session(lambda r: r.bulk_create([ok(3), ok(4, ratio=float("inf"))])), InvalidValue,
     "Account.ratio"),
    ("NULL in a NOT NULL column", in_session(lambda r: r.create(**ok(3, handle=None))),
     InvalidValue, "Account.handle"),
    ("NOT NULL column left out", in_session(lambda r: r.create(id=3)), InvalidValue,
     "Account.handle"),
    ("NOT NULL column left out, 2nd row of bulk_create",
     in_session(lambda r: r.bulk_create([ok(3), {"id": 4}])), InvalidValue, "Account.handle"),
    ("not an enum value", in_session(lambda r: r.create(**ok(3, mood=SECRET))), InvalidValue,
     "Account.mood"),
    ("NUL character", in_session(lambda r: r.create(**ok(3, handle=f"a\x00{SECRET[:5]}"))),
     InvalidValue, "Account.handle"),
    ("NUL character, 2nd row of upsert_many",
     in_session(lambda r: r.upsert_many([ok(3), ok(4, handle="a\x00b")], on=["id"])),
     InvalidValue, "Account.handle"),
    ("repository write in a read session",
     in_read_session(lambda s: s.repository(Account).update(
         s.repository(Account).get(1), handle="changed")),
     ReadOnlySession, None),
    ("raw UPDATE in a read session",
     in_read_session(lambda s: s.execute(text("UPDATE bad_input_accounts SET handle = 'x'"))),
     ReadOnlySession, None),
    ("upsert rewriting the primary key",
     in_session(lambda r: r.upsert_many([ok(1)], on=["handle"], update=["id"])), QueryError,
     None),
    ("keyset cursor of another table", foreign_cursor, QueryError, None),
]  # fmt: skip


@pytest.fixture
def seeded(database: Database) -> Iterator[Database]:
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    with database.session() as s:
        s.repository(Account).bulk_create([ok(1), ok(2)])
        s.repository(Ledger).bulk_create([{"id": 1, "handle": "l1"}, {"id": 2, "handle": "l2"}])
    yield database
    Base.metadata.drop_all(database.engine)


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read_session() as s:
        rows = s.repository(Account).list(order_by="id")
        return [(a.id, a.handle, a.small, a.amount, a.ratio, a.mood) for a in rows]


@pytest.mark.parametrize(
    ("action", "kind", "column"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_same_error_everywhere_and_nothing_written(
    seeded: Database,
    action: Callable[[Database], None],
    kind: type[StorelayerError],
    column: str | None,
) -> None:
    before = stored(seeded)
    with pytest.raises(StorelayerError) as caught:
        action(seeded)
    error = caught.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    said = " ".join([str(error), *map(str, error.args)])
    assert SECRET not in said and SECRET[:5] not in said, said
    if column is not None:
        assert column in str(error)
        assert isinstance(error, InvalidValue) and error.column == column and error.limit
    assert stored(seeded) == before, "a refused write changed the stored rows"


def test_a_caught_conflict_leaves_the_unit_usable(seeded: Database) -> None:
    with seeded.session() as s:
        accounts = s.repository(Account)
        with pytest.raises(StorelayerError) as caught:
            accounts.create(**ok(3, handle="h1"))
        assert SECRET not in str(caught.value)
        accounts.create(**ok(4))
    assert [row[0] for row in stored(seeded)] == [1, 2, 4]
