"""One writer process of the SQLite contention test:
``python _sqlite_writer.py URL WRITER WRITERS`` connects, prints ``ready``, reads
``START END DEADLINE`` (Unix times) from stdin, then commits rows (each unit reads, then
writes) from START until END, and past END until every one of the WRITERS writers has
committed a row (or until DEADLINE), so that a writer that waited out long busy spells
still writes against the others. Prints a JSON summary."""

from __future__ import annotations

import json
import sys
import time

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "contention_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    writer: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


def write_until(url: str, writer: int, writers: int) -> dict[str, object]:
    """Commit rows as the module says; the count, the seconds from START to this
    writer's first commit, and the errors that reached this caller."""
    committed, errors, first = 0, [], None
    others_wrote = False
    with storelayer.connect(url) as db:
        print("ready", flush=True)
        start, end, deadline = (float(arg) for arg in sys.stdin.readline().split())
        time.sleep(max(0.0, start - time.time()))
        while time.time() < deadline and (time.time() < end or not others_wrote or not committed):

            def unit(s: storelayer.Session, seq: int = committed) -> bool:
                others = select(func.count(Entry.writer.distinct())).where(Entry.writer != writer)
                seen = s.execute(others).scalar_one()
                s.add(Entry(writer=writer, seq=seq))
                return seen == writers - 1

            try:
                others_wrote = db.run_in_transaction(unit, retries=10)
                committed += 1
                first = first if first is not None else round(time.time() - start, 3)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")
    return {
        "writer": writer,
        "committed": committed,
        "first_commit_after": first,
        "errors": errors[:5],
        "n_errors": len(errors),
    }


if __name__ == "__main__":
    print(json.dumps(write_until(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
