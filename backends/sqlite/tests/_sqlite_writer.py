"""One writer process of the SQLite contention test:
``python _sqlite_writer.py URL WRITER START END`` commits rows (each unit reads, then
writes) from the Unix time START until END and prints a JSON summary."""

from __future__ import annotations

import json
import sys
import time

from sqlalchemy import Integer, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "contention_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    writer: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


def write_between(url: str, writer: int, start: float, end: float) -> dict[str, object]:
    """Commit rows between ``start`` and ``end``; the count and the errors that
    reached this caller."""
    committed, errors = 0, []
    with storelayer.connect(url) as db:
        time.sleep(max(0.0, start - time.time()))
        while time.time() < end:

            def unit(s: storelayer.Session, seq: int = committed) -> None:
                s.execute(text("SELECT count(*) FROM contention_entries")).scalar()
                s.add(Entry(writer=writer, seq=seq))

            try:
                db.run_in_transaction(unit, retries=10)
                committed += 1
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")
    return {"writer": writer, "committed": committed, "errors": errors[:5], "n_errors": len(errors)}


if __name__ == "__main__":
    url, writer, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(write_between(url, writer, start, end)))
