"""Run inside a private network namespace (``unshare -n``): start throwaway PostgreSQL
and MariaDB servers on its loopback, open pooled connections to each, then take the
loopback down so that every packet is silently dropped, and time how long a unit of
work takes to fail. Prints one JSON document. Nothing outside the namespace is touched.

Two paths per backend, each taken on purpose: ``busy`` (the pooled connection is not
pinged: the query itself waits out the TCP user timeout) and ``idle`` (the checkout pings
the connection: the ping waits out the user timeout, then the pool's reconnect waits out
the connect timeout). ``baseline`` is the time a healthy unit took on fresh connections
before the drop, the measure of how loaded the machine is in this run.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import ExitStack
from typing import Any

from sqlalchemy import text

import storelayer

#: Give up on a unit of work after this long: "minutes" would mean no detection.
PATIENCE = 60.0


def loopback(state: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", state], check=True)


def time_failure(db: storelayer.Database, results: dict[str, Any], name: str) -> None:
    started = time.monotonic()
    try:
        with db.session() as s:
            s.execute(text("SELECT 1"))
        results[name] = {"failed": False}
    except Exception as error:
        results[name] = {
            "failed": True,
            "seconds": round(time.monotonic() - started, 2),
            "error": type(error).__name__,
        }


#: ``ping_after`` for each path: never within the test, and at every checkout.
PATHS = {"busy": 3600.0, "idle": 0.0}


def main() -> None:
    from storelayer_mysql.testing import MariaDBServer
    from storelayer_postgresql.testing import PostgreSQLServer, make_workdir

    loopback("up")
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        pg = stack.enter_context(PostgreSQLServer(make_workdir(), settings={"fsync": "off"}))
        maria = stack.enter_context(MariaDBServer(make_workdir("storelayer-mariadb-")))
        stack.callback(loopback, "up")  # the servers stop through their loopback
        urls = {"postgresql": pg.url, "mysql": maria.url.set(database="mysql")}
        databases = {
            f"{backend} {path}": stack.enter_context(storelayer.connect(url, ping_after=after))
            for backend, url in urls.items()
            for path, after in PATHS.items()
        }
        started = time.monotonic()
        for db in databases.values():
            with db.session() as s:
                s.execute(text("SELECT 1"))
        baseline = (time.monotonic() - started) / len(databases)
        loopback("down")
        threads = [
            threading.Thread(target=time_failure, args=(db, results, name), daemon=True)
            for name, db in databases.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
    print(json.dumps({"baseline": round(baseline, 4), "units": results}))


if __name__ == "__main__":
    main()
