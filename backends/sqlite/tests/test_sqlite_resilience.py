"""SQLite under contention: four processes writing one file for ten seconds, and no
"database is locked" reaches any of them."""

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
#: Time for the writer interpreters to start before they begin together.
STARTUP = 6.0
WRITER = Path(__file__).with_name("_sqlite_writer.py")


def test_four_processes_write_one_file_without_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'contention.db'}"
    with storelayer.connect(url) as db:
        Base.metadata.create_all(db.engine)
    start = time.time() + STARTUP
    args = [str(start), str(start + SECONDS)]
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, str(n), *args], stdout=subprocess.PIPE, text=True
        )
        for n in range(WRITERS)
    ]
    outcomes = [json.loads(p.communicate(timeout=STARTUP + SECONDS + 60)[0]) for p in writers]
    assert [p.returncode for p in writers] == [0] * WRITERS
    errors = [e for outcome in outcomes for e in outcome["errors"]]
    assert errors == [], errors
    committed = sum(outcome["committed"] for outcome in outcomes)
    with storelayer.connect(url) as db, db.read_session() as s:
        stored = s.execute(select(func.count()).select_from(Entry)).scalar_one()
    assert stored == committed
    assert all(outcome["committed"] > 0 for outcome in outcomes)
    record(
        "sqlite 4 processes x 10 s",
        {"rows": committed, "per_writer": [o["committed"] for o in outcomes]},
    )
