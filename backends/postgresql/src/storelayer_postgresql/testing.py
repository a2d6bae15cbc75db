"""Throwaway PostgreSQL servers for tests that need one of their own (authentication,
restarts, replication), started from the server binaries on the machine.

The shared server of the machine is never touched. As root, the server runs as the
``postgres`` user (PostgreSQL refuses root) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from storelayer.testing.replicas import claim_workdir, orphaned_workdirs

SERVICE_USER = "postgres"


def find_bindir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: ``PG_BINDIR``, then the newest
    ``/usr/lib/postgresql/*/bin``, then ``PATH``."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name or 0)
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def make_workdir(prefix: str = "storelayer-pg-") -> Path:
    """A fresh directory under the system temp dir that the server user can reach."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgreSQLServer:
    """One private PostgreSQL cluster in ``workdir``, listening on 127.0.0.1:``port``.

    ``workdir`` must be reachable by the ``postgres`` user when running as root (pytest's
    ``tmp_path`` is not: use :func:`make_workdir`).

    ``password`` set: TCP connections need it (scram-sha-256); else they are trusted.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        password: str | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; set PG_BINDIR"
            )
        self.bindir = bindir
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.password = password
        self.port = port or free_port()
        self.settings = dict(settings or {})

    @property
    def url(self) -> URL:
        """The server's ``postgres`` database as the superuser."""
        return URL.create(
            "postgresql+psycopg2",
            username=SERVICE_USER,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def _run(self, args: Sequence[str], *, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *args],
            check=False,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """``initdb`` the cluster (password from a 0600 file, never argv)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._own(self.workdir)
        args = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            SERVICE_USER,
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ]
        if self.password is not None:
            pwfile = self.workdir / "pwfile"
            pwfile.write_text(self.password)
            pwfile.chmod(0o600)
            self._own(pwfile)
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth-host=trust"]
        self._run(args)
        if self.password is not None:
            (self.workdir / "pwfile").unlink()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = [
            f"-c port={self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.workdir}",
        ]
        options += [f"-c {k}={v}" for k, v in self.settings.items()]
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.workdir / "server.log"),
                "-o",
                " ".join(options),
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``, ``smart`` or ``immediate``)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode, "stop"])

    def restart(self) -> None:
        """Stop, then start on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> PostgreSQLServer:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -- streaming replication -------------------------------------------------------------

#: Primary settings for fast throwaway replication (durability does not matter here).
REPLICATION_SETTINGS: Mapping[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "fsync": "off",
    "wal_receiver_status_interval": "1s",
}


#: Name prefix of replica-set directories under the temp dir.
REPLICA_SET_PREFIX = "storelayer-pg-replicas-"


class PostgreSQLStandby(PostgreSQLServer):
    """A hot standby of ``primary``, cloned with ``pg_basebackup -R`` (which writes
    ``standby.signal`` and ``primary_conninfo``) and streaming from it."""

    def __init__(
        self, workdir: Path, primary: PostgreSQLServer, *, port: int | None = None
    ) -> None:
        super().__init__(workdir, port=port, settings={"fsync": "off"})
        self.primary = primary

    def init(self) -> None:
        """Clone the primary (it must run) into this standby's data directory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._own(self.workdir)
        self._run(
            [
                str(self.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                SERVICE_USER,
                "-D",
                str(self.datadir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ]
        )

    def set_apply_delay(self, seconds: float) -> None:
        """Replay each commit ``seconds`` after the primary made it
        (``recovery_min_apply_delay``, reloaded without a restart)."""
        with _autocommit(self.url) as connection:
            milliseconds = round(seconds * 1000)
            connection.exec_driver_sql(
                f"ALTER SYSTEM SET recovery_min_apply_delay = '{milliseconds}ms'"
            )
            connection.exec_driver_sql("SELECT pg_reload_conf()")


class PostgreSQLReplicaSet:
    """A private primary with ``replicas`` streaming standbys on free ports, in one
    temporary directory removed on exit. A context manager::

        with PostgreSQLReplicaSet(replicas=2) as cluster:
            db = storelayer.connect(cluster.primary_url, replicas=cluster.replica_urls)
    """

    def __init__(self, replicas: int = 1, *, workdir: Path | None = None) -> None:
        if find_bindir() is None:
            raise FileNotFoundError(
                "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found; "
                "set PG_BINDIR"
            )
        self.workdir = workdir or make_workdir(REPLICA_SET_PREFIX)
        self.primary = PostgreSQLServer(self.workdir / "primary", settings=REPLICATION_SETTINGS)
        self.standbys = [
            PostgreSQLStandby(self.workdir / f"replica{i}", self.primary) for i in range(replicas)
        ]
        self._running: set[int] = set()

    @property
    def primary_url(self) -> URL:
        """The primary's ``postgres`` database as the superuser."""
        return self.primary.url

    @property
    def replica_urls(self) -> list[URL]:
        """Each standby's ``postgres`` database, in order."""
        return [standby.url for standby in self.standbys]

    def database_urls(self, name: str) -> tuple[URL, list[URL]]:
        """Primary and replica URLs of database ``name``."""
        replicas = [url.set(database=name) for url in self.replica_urls]
        return self.primary_url.set(database=name), replicas

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` on the primary (it replicates to every standby)."""
        with _autocommit(self.primary_url) as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.wait_replayed()

    def set_delay(self, index: int, seconds: float) -> None:
        """Delay replay on standby ``index`` by ``seconds`` (0 removes the delay)."""
        self.standbys[index].set_apply_delay(seconds)

    def stop_replica(self, index: int) -> None:
        """Kill standby ``index`` (``pg_ctl stop -m immediate``: connections drop)."""
        self.standbys[index].stop("immediate")
        self._running.discard(index)

    def start_replica(self, index: int) -> None:
        """Start standby ``index`` again; it resumes streaming."""
        self.standbys[index].start()
        self._running.add(index)

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until every running standby replayed the primary's current WAL."""
        with _autocommit(self.primary_url) as connection:
            position = connection.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
        deadline = time.monotonic() + timeout
        for index in sorted(self._running):
            with _autocommit(self.standbys[index].url) as connection:
                while not connection.exec_driver_sql(
                    f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"
                ).scalar():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"standby {index} did not replay {position}")
                    time.sleep(0.02)

    def __enter__(self) -> PostgreSQLReplicaSet:
        for orphan in orphaned_workdirs(REPLICA_SET_PREFIX):
            self._reap(orphan)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            claim_workdir(self.workdir)
            self.primary._own(self.workdir)
            self.primary.init()
            self.primary.start()
            for index, standby in enumerate(self.standbys):
                standby.init()
                self.start_replica(index)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _reap(self, orphan: Path) -> None:
        """Stop the servers of a set whose test run died before tearing it down."""
        for datadir in orphan.glob("*/data"):
            if (datadir / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.primary._run(
                        [
                            str(self.primary.bindir / "pg_ctl"),
                            "-D",
                            str(datadir),
                            "-m",
                            "immediate",
                            "-w",
                            "stop",
                        ]
                    )
        shutil.rmtree(orphan, ignore_errors=True)

    def __exit__(self, *exc_info: object) -> None:
        try:
            for server in [*self.standbys, self.primary]:
                if (server.datadir / "postmaster.pid").exists():
                    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                        server.stop("immediate")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def _autocommit(url: URL) -> Iterator[Connection]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
