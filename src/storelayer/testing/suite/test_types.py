"""Values come back exactly as written: text in any script, long text, exact decimals,
booleans, NULL versus empty, UUIDs, timezone-aware and naive datetimes, bytes, JSON,
64-bit integers and enums. Every test runs through both APIs, so through the sync and
the async driver."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from storelayer.backend import Backend
from storelayer.database import Database
from storelayer.testing.suite.fixtures import as_utc, user_row
from storelayer.testing.suite.models import (
    ConformanceToken,
    ConformanceUser,
    ConformanceValue,
    Mood,
)

TEXTS = {
    "emoji": "duck \N{DUCK} rocket \N{ROCKET} coder \U0001f469\U0001f3fd\u200d\U0001f4bb flag "
    "\U0001f1f3\U0001f1ff",
    "cjk": "\u6f22\u5b57 \u304b\u306a \u30ab\u30ca \ud55c\uad6d\uc5b4 \u4e2d\u6587",
    "combining-marks": "e\u0301 a\u0308 Z\u0351\u0348 n\u0303",
    "precomposed": "\u00e9 \u00e4 \u00f1",
    "right-to-left": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "astral-math": "\U0001d518\U0001d52b\U0001d526 \U0001d7d9\U0001d7da\U0001d7db",
    "controls": "tab\tnew\nline\rreturn",
}


@pytest.mark.parametrize("text", list(TEXTS.values()), ids=list(TEXTS))
def test_unicode_round_trips_unchanged(database: Database, text: str) -> None:
    username = text[:64]
    with database.session() as s:
        s.repository(ConformanceUser).create(
            **user_row(1, username=username, full_name=text, bio=text * 3)
        )
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        found = users.get_by(username=username)
        assert found is not None, "filtering on the stored text found nothing"
        assert found.username == username
        assert found.full_name == text
        assert found.bio == text * 3
        assert users.count(full_name=text) == 1


def test_precomposed_and_combining_forms_stay_distinct(database: Database) -> None:
    with database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(1, full_name="caf\u00e9"))
        users.create(**user_row(2, full_name="cafe\u0301"))
    with database.read_session() as s:
        stored = [u.full_name for u in s.repository(ConformanceUser).list(order_by="id")]
    assert stored == ["caf\u00e9", "cafe\u0301"], "the text was normalized"


def test_long_text_round_trips(database: Database) -> None:
    text = ("storelayer \N{CHECK MARK} \u6f22\u5b57 \N{DUCK} " * 6_000)[:100_000]
    assert len(text) == 100_000
    with database.session() as s:
        s.repository(ConformanceUser).create(**user_row(1, bio=text))
    with database.read_session() as s:
        found = s.repository(ConformanceUser).get_by(username="user00001")
    assert found is not None
    assert found.bio is not None
    assert len(found.bio) == 100_000
    assert found.bio == text


DECIMALS = [
    Decimal("12345678.1234"),
    Decimal("-12345678.1234"),
    Decimal("99999999.9999"),
    Decimal("0"),
    Decimal("0.0001"),
    Decimal("-0.0001"),
    Decimal("0.1"),
    Decimal("1.1000"),
]


def test_decimals_round_trip_exactly(database: Database) -> None:
    with database.session() as s:
        s.repository(ConformanceUser).bulk_create(
            [user_row(i, balance=value) for i, value in enumerate(DECIMALS, start=1)]
        )
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        stored = [u.balance for u in users.list(order_by="id")]
        assert all(isinstance(value, Decimal) for value in stored)
        assert stored == DECIMALS
        scale = Decimal("0.0001")  # Numeric(12, 4)
        assert [str(v) for v in stored] == [str(v.quantize(scale)) for v in DECIMALS]
        for value in DECIMALS:
            assert users.count(balance=value) == 1, f"filtering on {value} failed"
        ordered = [u.balance for u in users.list(order_by="balance")]
        assert ordered == sorted(DECIMALS)
        assert users.count(balance__gt=Decimal("0.1")) == 3


def test_booleans_null_and_empty_string_round_trip(database: Database) -> None:
    with database.session() as s:
        users = s.repository(ConformanceUser)
        users.create(**user_row(1, is_active=False, full_name=None, bio=""))
        users.create(**user_row(2, is_active=True, full_name="", bio=None))
    with database.read_session() as s:
        one, two = s.repository(ConformanceUser).list(order_by="id")
    assert (one.is_active, one.full_name, one.bio) == (False, None, "")
    assert (two.is_active, two.full_name, two.bio) == (True, "", None)


def test_uuid_values_round_trip_and_filter(database: Database) -> None:
    keys = [uuid.uuid4() for _ in range(3)]
    with database.session() as s:
        tokens = s.repository(ConformanceToken)
        for key in keys:
            tokens.create(id=key, label=str(key))
    with database.read_session() as s:
        tokens = s.repository(ConformanceToken)
        assert {t.id for t in tokens.list()} == set(keys)
        assert all(isinstance(t.id, uuid.UUID) for t in tokens.list())
        assert [t.label for t in tokens.list(id__in=keys[:2])] != []
        assert tokens.count(id__in=keys[:2]) == 2
        assert tokens.count(id__ne=keys[0]) == 2


ZONES = {
    "utc": dt.timezone.utc,
    "plus-05-30": dt.timezone(dt.timedelta(hours=5, minutes=30)),
    "minus-08-00": dt.timezone(dt.timedelta(hours=-8)),
}
#: A wall-clock time; each zone above makes it a different instant.
WALL_CLOCK = dt.datetime(2024, 3, 10, 12, 30, 45)


def store_datetime(database: Database, value: dt.datetime) -> dt.datetime:
    """Write ``value`` in one unit of work and read it back in another."""
    with database.session() as s:
        key = s.repository(ConformanceUser).create(**user_row(1, created_at=value)).id
    with database.read_session() as s:
        return s.repository(ConformanceUser).get_or_raise(key).created_at


def test_utc_datetime_round_trips_as_the_same_instant(database: Database) -> None:
    written = WALL_CLOCK.replace(tzinfo=dt.timezone.utc)
    assert as_utc(store_datetime(database, written)) == written


@pytest.mark.parametrize("zone", list(ZONES.values()), ids=list(ZONES))
def test_aware_datetime_keeps_its_instant(database: Database, zone: dt.tzinfo) -> None:
    """Documented for every backend: a timezone-aware datetime is stored as an instant.
    It must never keep the wall-clock time and drop the offset, which silently moves
    the instant."""
    written = WALL_CLOCK.replace(tzinfo=zone)
    read = store_datetime(database, written)
    assert as_utc(read) == written, (
        f"wrote {written.isoformat()}, read back {read.isoformat()}: the instant moved"
    )


@pytest.mark.parametrize("zone", list(ZONES.values()), ids=list(ZONES))
def test_aware_datetime_comes_back_aware(database: Database, zone: dt.tzinfo) -> None:
    """Guaranteed on every backend, whether its database keeps offsets or not: a
    ``DateTime(timezone=True)`` column returns the instant aware, in UTC, with its
    microseconds."""
    written = WALL_CLOCK.replace(tzinfo=zone, microsecond=123456)
    read = store_datetime(database, written)
    assert read.tzinfo is not None, "a timezone-aware column returned a naive datetime"
    assert read.utcoffset() == dt.timedelta(0), "an aware datetime did not come back in UTC"
    assert read == written
    assert read.microsecond == 123456


def test_aware_datetimes_filter_and_order_across_zones(
    database: Database, backend: Backend
) -> None:
    instants = {
        "early": dt.datetime(2024, 1, 1, 10, 0, tzinfo=ZONES["plus-05-30"]),  # 04:30 UTC
        "middle": dt.datetime(2024, 1, 1, 6, 0, tzinfo=dt.timezone.utc),
        "late": dt.datetime(2024, 1, 1, 0, 0, tzinfo=ZONES["minus-08-00"]),  # 08:00 UTC
    }
    with database.session() as s:
        users = s.repository(ConformanceUser)
        for i, (name, when) in enumerate(instants.items(), start=1):
            users.create(**user_row(i, username=name, created_at=when))
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        ordered = [u.username for u in users.list(order_by="created_at")]
        after = users.list(created_at__gt=dt.datetime(2024, 1, 1, 5, 0, tzinfo=dt.timezone.utc))
    assert ordered == ["early", "middle", "late"], f"{backend.name} ordered by wall clock"
    assert sorted(u.username for u in after) == ["late", "middle"]


def store_values(database: Database, rows: list[dict[str, Any]]) -> list[ConformanceValue]:
    """Write ``rows`` in one unit of work; read them back, in order, in another."""
    with database.session() as s:
        s.repository(ConformanceValue).bulk_create(rows)
    with database.read_session() as s:
        return s.repository(ConformanceValue).list(order_by="id")


BYTES = [
    b"",
    b"\x00",
    bytes(range(256)),
    b"quote ' backslash \\ double \" percent %s",
    bytes(range(256)) * 80,
]


def test_bytes_round_trip_and_filter(database: Database) -> None:
    stored = store_values(database, [{"payload": value} for value in BYTES])
    assert [v.payload for v in stored] == BYTES
    assert all(isinstance(v.payload, bytes) for v in stored), "bytes came back as another type"
    with database.read_session() as s:
        values = s.repository(ConformanceValue)
        assert values.count(payload=bytes(range(256))) == 1
        assert values.count(payload=b"") == 1


DOCUMENT = {
    "text": "storelayer \N{DUCK} \u6f22\u5b57",
    "int": 2**53 + 1,
    "float": 0.5,
    "list": [1, "two", None, True],
    "nested": {"empty": {}, "quote": "'\""},
}


def test_json_round_trips(database: Database) -> None:
    stored = store_values(database, [{"document": DOCUMENT}, {"document": [DOCUMENT, 1]}])
    assert [v.document for v in stored] == [DOCUMENT, [DOCUMENT, 1]]


BIG = [2**63 - 1, -(2**63), 2**53 + 1, 0]


def test_64_bit_integers_round_trip_filter_and_order(database: Database) -> None:
    stored = store_values(database, [{"big": value} for value in BIG])
    assert [v.big for v in stored] == BIG
    with database.read_session() as s:
        values = s.repository(ConformanceValue)
        assert values.count(big=2**53 + 1) == 1, "the value went through a float"
        assert [v.big for v in values.list(order_by="big")] == sorted(BIG)


def test_enums_round_trip_and_filter(database: Database) -> None:
    stored = store_values(database, [{"mood": Mood.CALM}, {"mood": Mood.CURIOUS}, {"mood": None}])
    assert [v.mood for v in stored] == [Mood.CALM, Mood.CURIOUS, None]
    with database.read_session() as s:
        assert s.repository(ConformanceValue).count(mood=Mood.CURIOUS) == 1


def test_naive_datetime_keeps_its_wall_clock(database: Database) -> None:
    """A naive value in a column without a time zone is nobody's instant: no driver may
    shift it by a session or local time zone."""
    [stored] = store_values(database, [{"naive_at": WALL_CLOCK}])
    assert stored.naive_at == WALL_CLOCK
    assert stored.naive_at.tzinfo is None
