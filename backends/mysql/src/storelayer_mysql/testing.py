"""Throwaway MariaDB servers for tests that need their own (replication, restarts),
started from the server binaries on the machine (``mariadb-install-db``, ``mariadbd``).

The shared server of the machine is never touched. As root, each server drops to the
``mysql`` user itself (``--user``); its files live in a temporary directory removed on
exit. Root connects over TCP on 127.0.0.1 without a password.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from storelayer.testing.replicas import claim_workdir, orphaned_workdirs

SERVICE_USER = "mysql"
#: Server options for fast throwaway replication (durability does not matter here).
SERVER_OPTIONS = (
    "--log-bin=mysql-bin",
    "--binlog-format=ROW",
    "--gtid-strict-mode=1",
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--max-connections=200",
)


def find_binaries() -> tuple[Path, Path] | None:
    """``(mariadb-install-db, mariadbd)`` from ``MARIADB_BINDIR``, ``PATH`` or
    ``/usr/sbin``; None when either is missing."""
    directories = [os.environ.get("MARIADB_BINDIR"), None, "/usr/sbin", "/usr/bin"]
    found: list[Path] = []
    for name in ("mariadb-install-db", "mariadbd"):
        path = next(
            (shutil.which(name, path=d) for d in directories if shutil.which(name, path=d)), None
        )
        if path is None:
            return None
        found.append(Path(path))
    return found[0], found[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owner() -> tuple[str | None, int, int]:
    """The account the server runs as: ``mysql`` when root, else the current user."""
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    entry = pwd.getpwnam(SERVICE_USER)
    return SERVICE_USER, entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def install_datadir(datadir: Path) -> None:
    """A fresh data directory with a password-less root (``mariadb-install-db``)."""
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError("MariaDB binaries (mariadb-install-db, mariadbd) not found")
    user, uid, gid = _owner()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    _chown_tree(datadir.parent, uid, gid)
    args = [
        str(binaries[0]),
        "--no-defaults",
        "--auth-root-authentication-method=normal",
        f"--datadir={datadir}",
        "--skip-test-db",
    ]
    if user is not None:
        args.append(f"--user={user}")
    # Its own temporary directory: two installs at once collide in /tmp.
    env = {**os.environ, "TMPDIR": str(datadir.parent)}
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {done.stderr.strip()[-2000:]}")


class MariaDBServer:
    """One private ``mariadbd`` in ``workdir`` on 127.0.0.1:``port`` with binlog and
    GTIDs; ``template``: a data directory to copy instead of running install-db;
    ``options``: more server options (they win over :data:`SERVER_OPTIONS`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        server_id: int = 1,
        port: int | None = None,
        template: Path | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.server_id = server_id
        self.port = port or free_port()
        self.template = template
        self.options = tuple(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> URL:
        """The server as root (no database selected)."""
        return URL.create("mysql+pymysql", username="root", host="127.0.0.1", port=self.port)

    def init(self) -> None:
        """Create the data directory."""
        _user, uid, gid = _owner()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.template is not None:
            shutil.copytree(self.template, self.datadir, symlinks=True)
            _chown_tree(self.workdir, uid, gid)
        else:
            install_datadir(self.datadir)

    def command(self) -> list[str]:
        """The ``mariadbd`` command line."""
        binaries = find_binaries()
        assert binaries is not None
        user, _uid, _gid = _owner()
        args = [
            str(binaries[1]),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.workdir / 'mysqld.sock'}",
            f"--pid-file={self.workdir / 'mysqld.pid'}",
            f"--log-error={self.workdir / 'error.log'}",
            f"--tmpdir={self.workdir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--server-id={self.server_id}",
            *SERVER_OPTIONS,
            *self.options,
        ]
        return [*args, f"--user={user}"] if user is not None else args

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until root can run a query."""
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("SELECT 1")
                return
            except pymysql.err.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.workdir / "error.log").read_text(errors="replace")[-2000:]
                    self.kill()
                    raise RuntimeError(
                        f"mariadbd did not start on port {self.port}: {log}"
                    ) from None
                time.sleep(0.1)

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> Any:
        """Run one statement as root (autocommit); the first column of the first row."""
        connection = pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", autocommit=True, connect_timeout=5
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                row = cursor.fetchone()
                return None if row is None else row[0]
        finally:
            connection.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly (SIGTERM), killing the server if it takes too long."""
        self._signal(signal.SIGTERM, timeout)

    def restart(self) -> None:
        """Stop cleanly, then start on the same port."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): its connections drop mid-query."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, number: int, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(number)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> MariaDBServer:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


#: Name prefix of replica-set directories under the temp dir.
REPLICA_SET_PREFIX = "storelayer-mariadb-replicas-"


def reap(orphan: Path) -> None:
    """Kill the servers of a set whose test run died before tearing it down: only
    processes whose command line names a data directory inside ``orphan``."""
    for pid_file in orphan.glob("*/mysqld.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if str(orphan) in command and "mariadbd" in command:
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(orphan, ignore_errors=True)


class MariaDBReplicaSet:
    """A private MariaDB primary with ``replicas`` GTID replicas (``MASTER_USE_GTID =
    slave_pos``), one install-db copied for all, in a temporary directory removed on
    exit. A context manager, like ``PostgreSQLReplicaSet``."""

    def __init__(self, replicas: int = 1, *, workdir: Path | None = None) -> None:
        if find_binaries() is None:
            raise FileNotFoundError("MariaDB binaries (mariadb-install-db, mariadbd) not found")
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=REPLICA_SET_PREFIX))
        template = self.workdir / "template" / "data"
        self.template = template
        self.primary = MariaDBServer(self.workdir / "primary", server_id=1, template=template)
        self.replicas = [
            MariaDBServer(self.workdir / f"replica{i}", server_id=i + 2, template=template)
            for i in range(replicas)
        ]

    @property
    def primary_url(self) -> URL:
        """The primary as root."""
        return self.primary.url

    @property
    def replica_urls(self) -> list[URL]:
        """Each replica as root, in order."""
        return [replica.url for replica in self.replicas]

    def database_urls(self, name: str) -> tuple[URL, list[URL]]:
        """Primary and replica URLs of database ``name``."""
        replicas = [url.set(database=name) for url in self.replica_urls]
        return self.primary_url.set(database=name), replicas

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` on the primary (it replicates to every replica)."""
        self.primary.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.wait_replayed()

    def _replicate(self, replica: MariaDBServer, delay: int = 0) -> None:
        replica.execute("STOP SLAVE")
        replica.execute(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='root', "
            "MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, "
            "MASTER_DELAY=%s",
            (self.primary.port, delay),
        )
        replica.execute("START SLAVE")

    def set_delay(self, index: int, seconds: float) -> None:
        """Apply each transaction on replica ``index`` ``seconds`` (whole) after the
        primary wrote it (``MASTER_DELAY``; 0 removes the delay)."""
        self._replicate(self.replicas[index], round(seconds))

    def stop_replica(self, index: int) -> None:
        """Kill replica ``index`` (SIGKILL: connections drop mid-query)."""
        self.replicas[index].kill()

    def start_replica(self, index: int) -> None:
        """Start replica ``index`` again; it resumes replicating where it stopped."""
        self.replicas[index].start()

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until every running replica applied the primary's current binlog."""
        position = self.primary.execute("SELECT @@global.gtid_binlog_pos")
        for index, replica in enumerate(self.replicas):
            if replica.process is None:
                continue
            done = replica.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (position, timeout))
            if done != 0:
                raise TimeoutError(f"replica {index} did not apply {position}")

    def __enter__(self) -> MariaDBReplicaSet:
        for orphan in orphaned_workdirs(REPLICA_SET_PREFIX):
            reap(orphan)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            claim_workdir(self.workdir)
            _chown_tree(self.workdir, *_owner()[1:])
            install_datadir(self.template)
            for server in (self.primary, *self.replicas):
                server.init()
                server.start()
            for replica in self.replicas:
                self._replicate(replica)
                replica.execute("SET GLOBAL read_only = 1")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for server in (*self.replicas, self.primary):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    server.kill()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
