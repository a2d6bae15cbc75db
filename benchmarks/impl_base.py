"""What every benchmarked implementation provides, and how the harness finds them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from benchmarks.targets import Target
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

#: Implementation name -> "module:factory", in the order they run in each round.
IMPLEMENTATIONS = {
    "raw": "benchmarks.impl_raw:raw_implementation",
    "core": "benchmarks.impl_core:CoreImplementation",
    "orm": "benchmarks.impl_orm:OrmImplementation",
    "advanced_alchemy": "benchmarks.impl_aa:AdvancedAlchemyImplementation",
    "django": "benchmarks.impl_django:DjangoImplementation",
    "storelayer": "benchmarks.impl_storelayer:StorelayerImplementation",
    "storelayer_rows": "benchmarks.impl_storelayer:StorelayerRowsImplementation",
}


def tally(quantities: Iterable[int]) -> Expected:
    """(rows, sum of quantity) of rows read one at a time."""
    rows = total = 0
    for quantity in quantities:
        rows += 1
        total += quantity
    return Expected(rows, total)


class Unavailable(Exception):
    """This implementation cannot run this operation (or at all) here; the message says
    why and is shown in the table instead of a time."""


class Implementation:
    """One way to talk to the benchmark table. Each operation method is one timed unit;
    the defaults raise ``Unavailable``."""

    #: Short name used on the command line and in reports.
    name: ClassVar[str] = ""

    def __init__(self, target: Target) -> None:
        self.target = target

    @classmethod
    def prepare(cls, targets: Sequence[Target]) -> None:
        """Process-wide setup for all ``targets`` before any ``open()`` (Django's
        settings can be configured only once per process)."""

    def open(self) -> None:
        """Create engines or connections; raise ``Unavailable`` when impossible."""

    def close(self) -> None:
        """Release every connection."""

    def insert(self, rows: list[Row]) -> None:
        """Insert ``rows`` (no ``id``) in one transaction, the fastest way this
        implementation offers."""
        raise Unavailable("no bulk insert")

    def get_by_id(self, ids: list[int]) -> Expected:
        """Fetch each id with ``get_one``; return (rows found, sum of quantity)."""
        found = [quantity for quantity in map(self.get_one, ids) if quantity is not None]
        return Expected(len(found), sum(found))

    def pages(self, queries: list[PageQuery]) -> Expected:
        """Run each page query with ``page``; return (rows, sum of ids)."""
        pages = [self.page(q) for q in queries]
        return Expected(sum(map(len, pages)), sum(map(sum, pages)))

    def counts(self, queries: list[CountQuery]) -> int:
        """Run each count query with ``count``; return the sum of the counts."""
        return sum(map(self.count, queries))

    def get_one(self, id_: int) -> int | None:
        """The quantity of row ``id_`` (None when missing), in its own unit of work."""
        raise Unavailable("no get by id")

    def page(self, q: PageQuery) -> list[int]:
        """The ids of page query ``q``, in its own unit of work."""
        raise Unavailable("no filtered pages")

    def count(self, q: CountQuery) -> int:
        """The count of count query ``q``, in its own unit of work."""
        raise Unavailable("no filtered count")

    def upsert(self, rows: list[Row]) -> None:
        """Insert ``rows``, updating ``UPDATE_COLUMNS`` of rows whose ``name`` exists,
        in one transaction."""
        raise Unavailable("no upsert")

    def stream(self, batch_size: int) -> Expected:
        """Read every row with bounded memory; return (rows, sum of quantity)."""
        raise Unavailable("no streaming")


Factory = Callable[[Target], Implementation]


def load_implementation(name: str) -> Factory | str:
    """The class (or factory) of implementation ``name`` (a key of ``IMPLEMENTATIONS``
    or a ``module:attribute`` path), or why it cannot be imported."""
    module_name, _, attr = IMPLEMENTATIONS.get(name, name).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return f"cannot import: {error}"
    found: Factory = getattr(module, attr)
    return found


def prepare_implementations(names: Sequence[str], targets: Sequence[Target]) -> None:
    """Call ``prepare(targets)`` on every importable implementation class in ``names``."""
    for name in names:
        factory = load_implementation(name)
        prepare = getattr(factory, "prepare", None)
        if prepare is not None:
            prepare(targets)


def create_implementation(name: str, target: Target) -> Implementation:
    """Instantiate ``name`` for ``target`` (not yet opened); raise ``Unavailable``."""
    factory = load_implementation(name)
    if isinstance(factory, str):
        raise Unavailable(factory)
    return factory(target)
