"""The per-table checksum of :mod:`storelayer.backup.counts` (the same digits), computed
on a batch of rows held column by column: each column's values become their JSON text
in one pass (``map`` with a function chosen once for the column's type), then each row's
text is hashed. A column of a type without a fast encoder, or of mixed types, takes the
value-by-value path (``canonical`` then ``json.dumps``), which is the definition."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import partial
from itertools import compress, repeat
from json.encoder import encode_basestring_ascii
from operator import attrgetter, is_not
from typing import Any

from storelayer.backup.counts import MODULUS, TableChecksum, canonical

Encode = Callable[[Any], str]

_dumps = partial(json.dumps, separators=(",", ":"), default=str)


def _token(value: Any) -> str:
    """One value's JSON text inside a row's digest (the definition)."""
    return _dumps(canonical(value))


def _quoted(texts: Iterable[str]) -> Iterator[str]:
    return map('"{}"'.format, texts)


def _decimals(values: Sequence[Decimal]) -> Iterable[str]:
    if all(map(Decimal.is_finite, values)):
        return _quoted(map(format, map(Decimal.normalize, values), repeat("f")))
    return map(_token, values)


def _datetimes(values: Sequence[dt.datetime]) -> Iterable[str]:
    if set(map(attrgetter("tzinfo"), values)) == {None}:
        return _quoted(map(dt.datetime.isoformat, values))
    return map(_token, values)


def _each(encode: Encode) -> Callable[[Sequence[Any]], Iterable[str]]:
    return partial(map, encode)


#: JSON text of a column of values of one exact type, as ``canonical`` then
#: ``json.dumps`` give each value.
_ENCODERS: dict[type, Callable[[Sequence[Any]], Iterable[str]]] = {
    str: _each(encode_basestring_ascii),
    int: _each(int.__repr__),
    bool: _each({True: "1", False: "0"}.__getitem__),
    float: lambda values: _quoted(map(float.__repr__, values)),
    Decimal: _decimals,
    dt.datetime: _datetimes,
    dt.date: lambda values: _quoted(map(dt.date.isoformat, values)),
    dt.time: lambda values: _quoted(map(dt.time.__str__, values)),
    dt.timedelta: lambda values: _quoted(map(dt.timedelta.__str__, values)),
    bytes: lambda values: _quoted(map(bytes.hex, values)),
}


def column_tokens(values: Sequence[Any]) -> Iterable[str]:
    """The JSON text of each value of one column."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    encode = _ENCODERS.get(kinds.pop()) if len(kinds) == 1 else None
    if encode is None:
        return map(_token, values)
    if not nulls:
        return encode(values)
    present = list(map(is_not, values, repeat(None)))
    tokens = ["null"] * len(values)
    places = compress(range(len(values)), present)
    deque(map(tokens.__setitem__, places, encode(list(compress(values, present)))), maxlen=0)
    return tokens


_HASH_DIGEST = type(hashlib.sha256()).digest
_from_bytes: Callable[[bytes, str], int] = int.from_bytes  # type: ignore[assignment]


def add_columns(checksum: TableChecksum, columns: Sequence[Sequence[Any]]) -> None:
    """Count a batch of rows, given as its columns (each the same length), into
    ``checksum``: the same result as ``checksum.add(row)`` for each row."""
    if not columns or not columns[0]:
        return
    tokens = [column_tokens(values) for values in columns]
    lines = map("[{}]".format, map(",".join, zip(*tokens, strict=True)))
    hashes = map(hashlib.sha256, map(str.encode, lines))
    digests = map(_from_bytes, map(_HASH_DIGEST, hashes), repeat("big"))
    checksum.rows += len(columns[0])
    checksum.total = (checksum.total + sum(digests)) % MODULUS
