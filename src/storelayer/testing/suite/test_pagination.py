"""Offset pages (``page()``) and signed keyset cursors (``keyset()``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storelayer.database import Database
from storelayer.errors import QueryError
from storelayer.repository import MAX_PER_PAGE, KeysetPage
from storelayer.testing.suite.fixtures import add_users, seed_users, user_row, usernames
from storelayer.testing.suite.models import (
    ConformanceMembership,
    ConformanceToken,
    ConformanceUser,
)


def names(first: int, last: int) -> list[str]:
    """Usernames ``user{first}`` .. ``user{last}`` as ``user_row`` makes them."""
    return [f"user{i:05d}" for i in range(first, last + 1)]


# -- page() -------------------------------------------------------------------------------


def test_page_of_an_empty_table(database: Database) -> None:
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page()
    assert page.items == []
    assert (page.total, page.pages, page.page) == (0, 0, 1)
    assert (page.has_next, page.has_prev) == (False, False)


@pytest.mark.parametrize(
    ("number", "first", "last", "has_next", "has_prev"),
    [
        pytest.param(1, 1, 10, True, False, id="first"),
        pytest.param(2, 11, 20, True, True, id="middle"),
        pytest.param(3, 21, 25, False, True, id="last"),
    ],
)
def test_page_first_middle_last(
    database: Database, number: int, first: int, last: int, has_next: bool, has_prev: bool
) -> None:
    seed_users(database, 25)
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page(number, 10)
    assert usernames(page.items) == names(first, last)
    assert (page.total, page.pages, page.page, page.per_page) == (25, 3, number, 10)
    assert (page.has_next, page.has_prev) == (has_next, has_prev)


def test_page_beyond_the_last_is_empty_not_an_error(database: Database) -> None:
    seed_users(database, 25)
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page(7, 10)
    assert page.items == []
    assert (page.total, page.pages, page.page) == (25, 3, 7)
    assert (page.has_next, page.has_prev) == (False, True)


def test_page_number_below_one_is_the_first_page(database: Database) -> None:
    seed_users(database, 5)
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page(0, 2)
    assert page.page == 1
    assert usernames(page.items) == names(1, 2)


def test_page_size_is_capped_at_max_per_page(database: Database) -> None:
    seed_users(database, MAX_PER_PAGE + 5)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        page = users.page(1, MAX_PER_PAGE * 10)
        window = users.keyset(limit=MAX_PER_PAGE * 10)
    assert page.per_page == MAX_PER_PAGE
    assert len(page.items) == MAX_PER_PAGE
    assert (page.has_next, page.pages) == (True, 2)
    assert len(window.items) == MAX_PER_PAGE
    assert window.has_next


@pytest.mark.parametrize(
    ("rows", "number", "has_next"),
    [
        pytest.param(25, 1, True, id="first-of-three"),
        pytest.param(25, 3, False, id="last-partial"),
        pytest.param(20, 2, False, id="last-exact-multiple"),
        pytest.param(20, 1, True, id="before-exact-multiple"),
        pytest.param(0, 1, False, id="empty"),
    ],
)
def test_page_without_count_has_no_total_but_knows_has_next(
    database: Database, rows: int, number: int, has_next: bool
) -> None:
    seed_users(database, rows)
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page(number, 10, count=False)
    assert (page.total, page.pages) == (None, None)
    assert page.has_next is has_next
    assert len(page.items) == min(10, max(0, rows - (number - 1) * 10))


def test_page_with_filters_and_ordering(database: Database) -> None:
    seed_users(database, 30)
    with database.read_session() as s:
        page = s.repository(ConformanceUser).page(2, 5, order_by="-score", score__lte=20)
    assert usernames(page.items) == list(reversed(names(11, 15)))
    assert (page.total, page.pages) == (20, 4)


# -- keyset() -----------------------------------------------------------------------------


def walk(fetch: Callable[[str | None], KeysetPage[ConformanceUser]]) -> list[list[str]]:
    """Follow cursors from the first page to the last; the usernames of every page."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        pages.append(usernames(page.items))
        assert page.has_next is (page.next_cursor is not None)
        if not page.has_next:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 1000, "keyset pagination does not end"


def flat(pages: list[list[str]]) -> list[str]:
    """The usernames of all ``pages``, in the order served."""
    return [name for page in pages for name in page]


def keyset_pages(database: Database, **options: object) -> list[list[str]]:
    """Walk ``ConformanceUser`` with ``keyset(**options)``, each page its own unit of
    work (as successive web requests would)."""

    def fetch(cursor: str | None) -> KeysetPage[ConformanceUser]:
        with database.read_session() as s:
            return s.repository(ConformanceUser).keyset(after=cursor, **options)  # type: ignore[arg-type]

    return walk(fetch)


def test_keyset_of_an_empty_table(database: Database) -> None:
    with database.read_session() as s:
        page = s.repository(ConformanceUser).keyset(limit=10)
    assert (page.items, page.next_cursor, page.has_next) == ([], None, False)


def test_keyset_walks_every_row_once_in_key_order(database: Database) -> None:
    seed_users(database, 25)
    pages = keyset_pages(database, limit=10)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert flat(pages) == names(1, 25)


def test_keyset_exact_multiple_of_the_limit_ends_without_an_empty_page(
    database: Database,
) -> None:
    seed_users(database, 20)
    pages = keyset_pages(database, limit=10)
    assert [len(p) for p in pages] == [10, 10]
    assert flat(pages) == names(1, 20)


@pytest.mark.parametrize("order_by", ["score", "-score", "is_active,-score"])
def test_keyset_ties_are_broken_by_the_primary_key(database: Database, order_by: str) -> None:
    add_users(database, [user_row(i, score=i % 3, is_active=i % 2 == 0) for i in range(1, 23)])
    with database.read_session() as s:
        expected = usernames(s.repository(ConformanceUser).list(order_by=f"{order_by},id"))
    pages = keyset_pages(database, order_by=order_by, limit=4)
    served = flat(pages)
    assert served == expected
    assert len(set(served)) == 22


@pytest.mark.parametrize("order_by", ["-created_at", "balance", "username"])
def test_keyset_orders_by_datetime_decimal_and_text(database: Database, order_by: str) -> None:
    seed_users(database, 13)
    with database.read_session() as s:
        expected = usernames(s.repository(ConformanceUser).list(order_by=order_by))
    assert flat(keyset_pages(database, order_by=order_by, limit=5)) == expected


def test_keyset_with_a_filter(database: Database) -> None:
    seed_users(database, 30)
    pages = keyset_pages(database, limit=4, score__gt=20)
    assert flat(pages) == names(21, 30)


def test_keyset_is_stable_under_concurrent_writes(database: Database) -> None:
    add_users(database, [user_row(i, score=i * 10) for i in range(1, 31)])
    with database.read_session() as s:
        first = s.repository(ConformanceUser).keyset(order_by="score", limit=10)
    assert usernames(first.items) == names(1, 10)
    with database.session() as s:  # another request writes between two pages
        users = s.repository(ConformanceUser)
        users.create(**user_row(101, username="before-cursor", score=5))
        users.create(**user_row(102, username="tie-at-cursor", score=100))
        users.create(**user_row(103, username="after-cursor", score=155))
        users.create(**user_row(104, username="at-the-end", score=10_000))
        assert users.delete_where(score=50) == 1  # a row already served disappears

    def fetch(cursor: str | None) -> KeysetPage[ConformanceUser]:
        with database.read_session() as s:
            return s.repository(ConformanceUser).keyset(
                after=cursor or first.next_cursor, order_by="score", limit=10
            )

    rest = flat(walk(fetch))
    served = usernames(first.items) + rest
    assert len(served) == len(set(served)), "a row was served twice"
    assert "before-cursor" not in served, "a row before the cursor was served"
    assert rest == ["tie-at-cursor", *names(11, 15), "after-cursor", *names(16, 30), "at-the-end"]


def test_keyset_over_uuid_and_composite_keys(database: Database) -> None:
    with database.session() as s:
        s.repository(ConformanceToken).bulk_create([{"label": f"t{i}"} for i in range(9)])
        s.repository(ConformanceMembership).bulk_create(
            [{"tenant": t, "member_id": m, "role": "r"} for t in ("b", "a") for m in (3, 1, 2)]
        )
    with database.read_session() as s:
        tokens = s.repository(ConformanceToken)
        first = tokens.keyset(limit=5)
        second = tokens.keyset(after=first.next_cursor, limit=5)
        ids = [t.id for t in first.items + second.items]
        assert ids == [t.id for t in tokens.list(order_by="id")]  # the database's UUID order
        assert len(set(ids)) == 9
        members = s.repository(ConformanceMembership)
        first_m = members.keyset(limit=4)
        second_m = members.keyset(after=first_m.next_cursor, limit=4)
        keys = [(m.tenant, m.member_id) for m in first_m.items + second_m.items]
        assert keys == [(t, m) for t in ("a", "b") for m in (1, 2, 3)]
        assert not second_m.has_next


def keyset_cursor(database: Database, order_by: str = "score") -> str:
    """A genuine cursor to the second page of 12 seeded users."""
    seed_users(database, 12)
    with database.read_session() as s:
        cursor = s.repository(ConformanceUser).keyset(order_by=order_by, limit=5).next_cursor
    assert cursor is not None
    return cursor


def flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another base64 character."""
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "body-flipped": lambda c: flip(c, len(c.partition(".")[0]) // 2),
    "body-first-char-flipped": lambda c: flip(c, 0),
    "signature-flipped": lambda c: flip(c, len(c.partition(".")[0]) + 1),
    "truncated": lambda c: c[:-4],
    "signature-dropped": lambda c: c.partition(".")[0],
    "body-dropped": lambda c: "." + c.partition(".")[2],
    "extra-part": lambda c: c + ".AAAA",
    "garbage": lambda c: "not-a-cursor",
    "garbage-with-dot": lambda c: "e30.e30",
    "empty": lambda c: "",
}


@pytest.mark.parametrize("tamper", list(TAMPERINGS.values()), ids=list(TAMPERINGS))
def test_tampered_keyset_cursor_is_a_query_error(
    database: Database, tamper: Callable[[str], str]
) -> None:
    cursor = keyset_cursor(database)
    with database.read_session() as s:
        users = s.repository(ConformanceUser)
        assert len(users.keyset(after=cursor, order_by="score", limit=5).items) == 5
        with pytest.raises(QueryError, match="cursor"):
            users.keyset(after=tamper(cursor), order_by="score", limit=5)


@pytest.mark.parametrize("other", ["-score", "username", None, "score,username"])
def test_cursor_for_another_ordering_is_a_query_error(
    database: Database, other: str | None
) -> None:
    cursor = keyset_cursor(database, order_by="score")
    with database.read_session() as s, pytest.raises(QueryError, match="order_by"):
        s.repository(ConformanceUser).keyset(after=cursor, order_by=other, limit=5)


def test_keyset_on_a_nullable_column_is_a_query_error(database: Database) -> None:
    with database.read_session() as s, pytest.raises(QueryError, match="nullable"):
        s.repository(ConformanceUser).keyset(order_by="full_name")
