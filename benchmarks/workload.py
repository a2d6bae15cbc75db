"""The work every implementation does: sizes, deterministic rows, queries, and the
results each operation must produce (computed here in Python, independently of any
implementation, so a broken implementation cannot look fast)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

Row = dict[str, Any]

#: Full-scale sizes; ``--scale`` multiplies each of them.
FULL_SIZES = {
    "insert_rows": 100_000,
    "gets": 10_000,
    "pages": 2_000,
    "counts": 1_000,
    "upsert_rows": 10_000,
    "stream_rows": 1_000_000,
}
CATEGORIES = tuple(f"cat-{n:02d}" for n in range(20))
PRICE_THRESHOLDS = (Decimal(0), Decimal(25), Decimal(50), Decimal(75))
PAGE_LIMIT = 50
BASE_TIME = datetime(2024, 1, 1)  # naive: the column is TIMESTAMP WITHOUT TIME ZONE
SEED = 20240101


@dataclass(frozen=True)
class Sizes:
    """How many rows or calls each operation handles."""

    insert_rows: int
    gets: int
    pages: int
    counts: int
    upsert_rows: int
    stream_rows: int

    @classmethod
    def from_scale(cls, scale: float) -> Sizes:
        """Full-scale sizes times ``scale``, each at least 2."""
        return cls(**{name: max(2, round(n * scale)) for name, n in FULL_SIZES.items()})


@dataclass(frozen=True)
class PageQuery:
    """``category = c AND price >= p ORDER BY id DESC LIMIT 50 OFFSET k``."""

    category: str
    min_price: Decimal
    offset: int
    limit: int = PAGE_LIMIT


@dataclass(frozen=True)
class CountQuery:
    """``SELECT count(*) WHERE category = c AND quantity >= q``."""

    category: str
    min_quantity: int


def make_row(i: int) -> Row:
    """Row number ``i`` (0-based; it gets id ``i + 1`` when loaded into an empty table)."""
    return {
        "name": f"item-{i:08d}",
        "category": CATEGORIES[i % len(CATEGORIES)],
        "price": Decimal((i * 7919) % 10_000) / 100,
        "quantity": (i * 31) % 1000,
        "created_at": BASE_TIME + timedelta(seconds=i),
    }


def make_rows(start: int, count: int) -> list[Row]:
    """Rows ``start`` .. ``start + count - 1``."""
    return [make_row(i) for i in range(start, start + count)]


def row_chunks(total: int, chunk: int = 100_000) -> Iterator[list[Row]]:
    """All rows ``0 .. total - 1`` in lists of at most ``chunk`` (bounded memory)."""
    for start in range(0, total, chunk):
        yield make_rows(start, min(chunk, total - start))


def quantity_of(i: int) -> int:
    """The quantity of row ``i`` without building the row."""
    return (i * 31) % 1000


@dataclass(frozen=True)
class Expected:
    """What the database holds or an operation returns: a row count and a checksum."""

    rows: int
    checksum: int


@dataclass
class Workload:
    """All inputs and expected outputs for one run, at one scale."""

    sizes: Sizes
    base_rows: list[Row] = field(repr=False)
    get_ids: list[int] = field(repr=False)
    page_queries: list[PageQuery] = field(repr=False)
    count_queries: list[CountQuery] = field(repr=False)
    upsert_rows: list[Row] = field(repr=False)
    expect_table: Expected = field(default=Expected(0, 0))
    expect_gets: Expected = field(default=Expected(0, 0))
    expect_pages: Expected = field(default=Expected(0, 0))
    expect_counts: int = 0
    expect_after_upsert: Expected = field(default=Expected(0, 0))
    expect_stream: Expected = field(default=Expected(0, 0))

    @classmethod
    def build(cls, sizes: Sizes) -> Workload:
        """Generate every input deterministically and compute the expected results."""
        rng = random.Random(SEED)
        base = make_rows(0, sizes.insert_rows)
        work = cls(
            sizes=sizes,
            base_rows=base,
            get_ids=[rng.randint(1, len(base)) for _ in range(sizes.gets)],
            page_queries=[],
            count_queries=[
                CountQuery(rng.choice(CATEGORIES), rng.randrange(1000))
                for _ in range(sizes.counts)
            ],
            upsert_rows=make_upsert_rows(base, sizes.upsert_rows),
        )
        matches = page_matches(base)
        work.page_queries = make_page_queries(rng, matches, sizes.pages)
        work.compute_expectations(matches)
        return work

    def compute_expectations(self, matches: dict[tuple[str, Decimal], list[int]]) -> None:
        """Fill in every ``expect_*`` field from the inputs."""
        base = self.base_rows
        base_sum = sum(row["quantity"] for row in base)
        self.expect_table = Expected(len(base), base_sum)
        self.expect_gets = Expected(
            len(self.get_ids), sum(base[i - 1]["quantity"] for i in self.get_ids)
        )
        page_ids = [
            id_
            for q in self.page_queries
            for id_ in matches[q.category, q.min_price][q.offset : q.offset + q.limit]
        ]
        self.expect_pages = Expected(len(page_ids), sum(page_ids))
        self.expect_counts = self._expected_counts()
        self.expect_after_upsert = upsert_expectation(base, base_sum, self.upsert_rows)
        n = self.sizes.stream_rows
        self.expect_stream = Expected(n, sum(quantity_of(i) for i in range(n)))

    def _expected_counts(self) -> int:
        """Sum of all count queries, through a per-category histogram of quantities."""
        histogram = {c: [0] * 1001 for c in CATEGORIES}
        for row in self.base_rows:
            histogram[row["category"]][row["quantity"]] += 1
        at_least = {c: _suffix_sums(h) for c, h in histogram.items()}
        return sum(at_least[q.category][q.min_quantity] for q in self.count_queries)


def _suffix_sums(values: list[int]) -> list[int]:
    """``out[i] = sum(values[i:])``."""
    out = [0] * (len(values) + 1)
    for i in range(len(values) - 1, -1, -1):
        out[i] = out[i + 1] + values[i]
    return out


def page_matches(base: list[Row]) -> dict[tuple[str, Decimal], list[int]]:
    """For each (category, price threshold): matching ids, highest first."""
    by_category: dict[str, list[tuple[int, Decimal]]] = {c: [] for c in CATEGORIES}
    for i, row in enumerate(base):
        by_category[row["category"]].append((i + 1, row["price"]))
    return {
        (c, p): sorted((id_ for id_, price in pairs if price >= p), reverse=True)
        for c, pairs in by_category.items()
        for p in PRICE_THRESHOLDS
    }


def make_page_queries(
    rng: random.Random, matches: dict[tuple[str, Decimal], list[int]], count: int
) -> list[PageQuery]:
    """``count`` page queries whose offsets fall inside their result sets."""
    queries = []
    for _ in range(count):
        category, price = rng.choice(CATEGORIES), rng.choice(PRICE_THRESHOLDS)
        hits = len(matches[category, price])
        queries.append(PageQuery(category, price, rng.randrange(max(1, hits - PAGE_LIMIT + 1))))
    return queries


def make_upsert_rows(base: list[Row], count: int) -> list[Row]:
    """Half of ``count`` rows update existing names (spread over the table, new price
    and quantity), half insert names the table does not have."""
    half_existing = min(count // 2, len(base))
    step = max(1, len(base) // max(1, half_existing))
    updates = [
        {**base[j * step], "price": base[j * step]["price"] + 1,
         "quantity": base[j * step]["quantity"] + 1}
        for j in range(half_existing)
    ]
    return updates + make_rows(len(base), count - half_existing)


def upsert_expectation(base: list[Row], base_sum: int, upserts: list[Row]) -> Expected:
    """Row count and quantity sum of the table after ``upserts`` ran on ``base``."""
    by_name = {row["name"]: row["quantity"] for row in base}
    total, rows = base_sum, len(base)
    for row in upserts:
        old = by_name.get(row["name"])
        total += row["quantity"] - (old or 0)
        rows += old is None
    return Expected(rows, total)
