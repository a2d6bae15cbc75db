"""The per-table checksum of :mod:`storelayer.backup.counts` (the same digits), computed
on a batch of rows held column by column: each column's values become their JSON text
in one pass (``map`` with a function chosen once for the column's type; the quotes of a
column without NULLs go into the rows' template), then each row's text is hashed. A
column of a type without a fast encoder, or of mixed types, takes the value-by-value
path (``canonical`` then ``json.dumps``), which is the definition."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, getcontext
from functools import partial
from itertools import compress, repeat
from json.encoder import encode_basestring_ascii
from operator import attrgetter, is_not
from typing import Any

from storelayer.backup.counts import MODULUS, TableChecksum, canonical

Encode = Callable[[Any], str]
#: A column's plain texts, None at a NULL's place (see ``TextedBatch``).
Texts = Sequence["str | None"]
#: A column's texts, whether they still go between quotes, and the values' plain texts
#: where they are what ``TextedBatch.texts`` holds.
Column = tuple[list[str], bool, "Texts | None"]

_dumps = partial(json.dumps, separators=(",", ":"), default=str)


def _token(value: Any) -> str:
    """One value's JSON text inside a row's digest (the definition)."""
    return _dumps(canonical(value))


#: Joins and splits the texts of a column: no value's text holds it (JSON escapes it).
_SEP = "\x00"


def _quote_all(texts: Iterable[str]) -> list[str]:
    """``"text"`` for each text, by one join and one split (no call per value)."""
    return ('"' + ('"' + _SEP + '"').join(texts) + '"').split(_SEP)


def _tokens(values: Sequence[Any]) -> Column:
    return list(map(_token, values)), False, None


def _plain(encode: Encode, shared: bool = False) -> Callable[[Sequence[Any]], Column]:
    def column(values: Sequence[Any]) -> Column:
        texts = list(map(encode, values))
        return texts, False, texts if shared else None

    return column


def _quoted(encode: Encode, shared: bool = False) -> Callable[[Sequence[Any]], Column]:
    def column(values: Sequence[Any]) -> Column:
        texts = list(map(encode, values))
        return texts, True, texts if shared else None

    return column


def _decimals(values: Sequence[Decimal]) -> Column:
    # ``str`` of a decimal is its digits (``1.10``, ``-0.00``) unless it needs an exponent
    # or is not finite (``1E+2``, ``NaN``, ``Infinity``), and ``normalize`` changes no
    # digit but trailing zeros while it has no more digits than the context's precision:
    # the others take the definition's path. Trailing zeros go in one pass.
    texts = list(map(Decimal.__str__, values))
    joined = _SEP.join(texts)
    if "E" in joined or "N" in joined or "n" in joined or max(map(len, texts)) > getcontext().prec:
        return _tokens(values)
    dots = joined.count(".")
    if not dots:
        return texts, True, texts
    # With a fraction in every text (a NUMERIC(p, s) column), trailing zeros are its own.
    joined = (
        _ZEROS.sub("", joined) if dots == len(texts) else _FRACTION_ZEROS.sub(r"\1", joined)
    )
    return _DOT.sub("", joined).split(_SEP), True, texts


#: Trailing zeros of each text; of each text's fraction; a dot left at the end.
_ZEROS = re.compile(r"0+(?=\x00|\Z)")
_FRACTION_ZEROS = re.compile(r"(\.[0-9]*?)0+(?=\x00|\Z)")
_DOT = re.compile(r"\.(?=\x00|\Z)")


def _datetimes(values: Sequence[dt.datetime]) -> Column:
    if set(map(attrgetter("tzinfo"), values)) == {None}:
        texts = list(map(dt.datetime.isoformat, values))
        return texts, True, texts
    return _tokens(values)


#: The JSON text of a column of values of one exact type, as ``canonical`` then
#: ``json.dumps`` give each value: the texts, and whether each goes between quotes.
_ENCODERS: dict[type, Callable[[Sequence[Any]], Column]] = {
    str: _plain(encode_basestring_ascii),
    int: _plain(int.__repr__, shared=True),
    bool: _plain({True: "1", False: "0"}.__getitem__),
    float: _quoted(float.__repr__, shared=True),
    Decimal: _decimals,
    dt.datetime: _datetimes,
    dt.date: _quoted(dt.date.isoformat),
    dt.time: _quoted(dt.time.__str__),
    dt.timedelta: _quoted(dt.timedelta.__str__),
    bytes: _quoted(bytes.hex),
}


def column_texts(values: Sequence[Any]) -> Column:
    """The JSON text of each value of one column, whether the texts still go between
    quotes (then no value is NULL), and the values' plain texts (``TextedBatch``, None
    at a NULL's place) where the column has them."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    encode = _ENCODERS.get(kinds.pop()) if len(kinds) == 1 else None
    if encode is None:
        return _tokens(values)
    if not nulls:
        return encode(values)
    present = list(map(is_not, values, repeat(None)))
    texts, quoted, shared = encode(list(compress(values, present)))
    tokens = ["null"] * len(values)
    places = list(compress(range(len(values)), present))
    deque(map(tokens.__setitem__, places, _quote_all(texts) if quoted else texts), maxlen=0)
    if shared is None:
        return tokens, False, None
    plain: list[str | None] = [None] * len(values)
    deque(map(plain.__setitem__, places, shared), maxlen=0)
    return tokens, False, plain


def column_tokens(values: Sequence[Any]) -> list[str]:
    """The JSON text of each value of one column."""
    texts, quoted, _ = column_texts(values)
    return _quote_all(texts) if quoted else texts


_HASH_DIGEST = type(hashlib.sha256()).digest
_from_bytes: Callable[[bytes, str], int] = int.from_bytes  # type: ignore[assignment]


def add_columns(
    checksum: TableChecksum, columns: Sequence[Sequence[Any]]
) -> list[Texts | None]:
    """Count a batch of rows, given as its columns (each the same length), into
    ``checksum``: the same result as ``checksum.add(row)`` for each row. The batch's
    text is made by joins (the quotes of a quoted column's texts by one join, each row's
    tokens by one, the rows by one); it is ASCII (JSON escapes the rest, and every
    newline), encoded at once and split into rows. Returns each column's plain texts
    where it has them (see ``TextedBatch``), else None."""
    if not columns or not columns[0]:
        return [None] * len(columns)
    texts = [column_texts(values) for values in columns]
    tokens = [_quote_all(t) if quoted else t for t, quoted, _ in texts]
    lines = "[" + "]\n[".join(map(",".join, zip(*tokens, strict=True))) + "]"
    hashes = map(hashlib.sha256, lines.encode().split(b"\n"))
    digests = map(_from_bytes, map(_HASH_DIGEST, hashes), repeat("big"))
    checksum.rows += len(columns[0])
    checksum.total = (checksum.total + sum(digests)) % MODULUS
    return [shared for _, _, shared in texts]
