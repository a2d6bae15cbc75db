"""SQLite under contention: four processes writing one file for ten seconds (and on
until each has committed), and no "database is locked" reaches any of them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _checks import record
from _sqlite_writer import Base, Entry
from sqlalchemy import func, select

import storelayer

WRITERS = 4
SECONDS = 10.0
#: Fairness is progress: every writer commits while the others write. On 2 cores
#: shared with a load of 13 a writer can start seconds late or wait out long busy
#: spells, so the writers go on past SECONDS until each has committed, up to this long.
DEADLINE = 120.0
WRITER = Path(__file__).with_name("_sqlite_writer.py")


def test_four_processes_write_one_file_without_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'contention.db'}"
    with storelayer.connect(url) as db:
        Base.metadata.create_all(db.engine)
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, str(n), str(WRITERS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    # They begin together once every interpreter is up (seconds apart on a busy machine).
    assert [p.stdout.readline() for p in writers] == ["ready\n"] * WRITERS  # type: ignore[union-attr]
    start = time.time() + 0.5
    times = f"{start} {start + SECONDS} {start + DEADLINE}\n"
    for p in writers:
        p.stdin.write(times)  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    outcomes = [json.loads(p.communicate(timeout=DEADLINE + 60)[0]) for p in writers]
    assert [p.returncode for p in writers] == [0] * WRITERS
    errors = [e for outcome in outcomes for e in outcome["errors"]]
    assert errors == [], errors
    committed = sum(outcome["committed"] for outcome in outcomes)
    with storelayer.connect(url) as db, db.read_session() as s:
        stored = s.execute(select(func.count()).select_from(Entry)).scalar_one()
    assert stored == committed
    firsts = [outcome["first_commit_after"] for outcome in outcomes]
    assert None not in firsts, f"a writer committed nothing in {DEADLINE} s: {outcomes}"
    record(
        "sqlite 4 processes x 10 s",
        {"rows": committed, "per_writer": [o["committed"] for o in outcomes], "first": firsts},
    )
