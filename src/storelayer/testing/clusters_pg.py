"""PostgreSQL topologies for tests: PgBouncer in transaction mode, and a pg_auto_failover
formation (monitor, primary, standby). Started from the Debian packages ``pgbouncer``,
``postgresql-15-auto-failover`` and ``pg-auto-failover-cli``; see
docs/operations/clusters.md."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL, Connection

from storelayer.config import parse_url
from storelayer.testing.clusters_process import (
    ProcessGroups,
    free_port,
    give_to,
    make_cluster_dir,
    port_open,
    require_binaries,
    wait_until,
)

#: The user PostgreSQL, pg_autoctl and PgBouncer run as when the tests run as root.
SERVICE_USER = "postgres"
#: The server PgBouncer pools when ``STORELAYER_TEST_POSTGRESQL_URL`` is unset.
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` (``PG_BINDIR`` wins)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise FileNotFoundError("PostgreSQL server binaries not found; set PG_BINDIR")
    return found[-1]


@contextmanager
def autocommit(url: URL | str) -> Iterator[Connection]:
    """One AUTOCOMMIT connection to ``url``, closed afterwards."""
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


class PgBouncerPool:
    """PgBouncer on a free port of 127.0.0.1 in ``pool_mode = transaction`` with
    ``server_round_robin = 1`` (server connections change hands on every transaction),
    serving every database of ``server`` under its own name. A context manager."""

    def __init__(self, server: URL | str | None = None, *, pool_size: int = 10) -> None:
        require_binaries("pgbouncer")
        raw = server or os.environ.get("STORELAYER_TEST_POSTGRESQL_URL") or DEFAULT_SERVER
        self.server_url = parse_url(raw).set(drivername="postgresql+psycopg2")
        self.pool_size = pool_size
        self.port = free_port()
        self.workdir = Path()
        self.processes: ProcessGroups | None = None

    def url(self, database: str) -> URL:
        """``database`` through the pooler, as the server URL's user."""
        return self.server_url.set(host="127.0.0.1", port=self.port, database=database)

    def direct_url(self, database: str) -> URL:
        """``database`` on the server itself (for checks the pooler would hide)."""
        return self.server_url.set(database=database)

    def config(self) -> str:
        """The ``pgbouncer.ini`` text."""
        host, port = self.server_url.host or "127.0.0.1", self.server_url.port or 5432
        return "\n".join(
            [
                "[databases]",
                f"* = host={host} port={port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {self.workdir / 'userlist.txt'}",
                "pool_mode = transaction",
                "server_round_robin = 1",
                f"default_pool_size = {self.pool_size}",
                "max_client_conn = 500",
                f"admin_users = {self.server_url.username or SERVICE_USER}",
                f"logfile = {self.workdir / 'pgbouncer.log'}",
                f"pidfile = {self.workdir / 'pgbouncer.pid'}",
                "",
            ]
        )

    def __enter__(self) -> PgBouncerPool:
        self.workdir = make_cluster_dir("pgbouncer")
        self.processes = ProcessGroups(self.workdir)
        try:
            user = self.server_url.username or SERVICE_USER
            (self.workdir / "userlist.txt").write_text(f'"{user}" ""\n')
            (self.workdir / "pgbouncer.ini").write_text(self.config())
            give_to(SERVICE_USER, self.workdir)
            ini = str(self.workdir / "pgbouncer.ini")
            self.processes.spawn("pgbouncer", SERVICE_USER, ["pgbouncer", ini])
            wait_until(lambda: port_open(self.port), "PgBouncer listening", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.processes is not None:
            self.processes.stop_all()
        shutil.rmtree(self.workdir, ignore_errors=True)


class PgAutoFailover:
    """A pg_auto_failover formation on free ports of 127.0.0.1: a monitor, and two nodes
    (a primary and a synchronous hot standby) with database ``dbname``. Every node trusts
    local TCP connections; a superuser role named after the OS user running the tests is
    created, so that the URI ``pg_autoctl show uri`` prints (which names no user) works as
    pasted. A context manager."""

    def __init__(self, dbname: str = "app") -> None:
        require_binaries("pg_autoctl")
        self.bindir = pg_bindir()
        self.dbname = dbname
        self.monitor_port = free_port()
        self.node_ports = [free_port([self.monitor_port])]
        self.node_ports.append(free_port([self.monitor_port, *self.node_ports]))
        self.workdir = Path()
        self.processes: ProcessGroups | None = None

    # -- addresses ---------------------------------------------------------------------

    @property
    def monitor_url(self) -> URL:
        """The monitor's database, as its ``autoctl_node`` role."""
        return URL.create(
            "postgresql+psycopg2",
            username="autoctl_node",
            host="127.0.0.1",
            port=self.monitor_port,
            database="pg_auto_failover",
        )

    def node_url(self, index: int, database: str | None = None) -> URL:
        """Node ``index`` alone (whatever its role), as ``postgres``."""
        return URL.create(
            "postgresql+psycopg2",
            username=SERVICE_USER,
            host="127.0.0.1",
            port=self.node_ports[index],
            database=database or self.dbname,
        )

    def uri(self) -> str:
        """The multi-host URI ``pg_autoctl show uri --formation default`` prints."""
        out = self._autoctl(
            "show", "uri", "--pgdata", str(self.workdir / "monitor"), "--formation", "default"
        )
        return out.strip()

    def multi_host_url(self, database: str | None = None, *, user: str = SERVICE_USER) -> str:
        """``postgresql://user@h1:p1,h2:p2/database?target_session_attrs=read-write``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.node_ports)
        return (
            f"postgresql://{user}@{hosts}/{database or self.dbname}?target_session_attrs=read-write"
        )

    # -- state -------------------------------------------------------------------------

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's ``(reported state, goal state)`` as the monitor sees them."""
        with autocommit(self.monitor_url) as connection:
            rows = connection.execute(
                text(
                    "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
                )
            ).all()
        return {str(name): (str(reported), str(goal)) for name, reported, goal in rows}

    def stable(self) -> bool:
        """One primary and one secondary, each in the state the monitor assigned."""
        states = self.states()
        reported = sorted(r for r, g in states.values() if r == g)
        return reported == ["primary", "secondary"]

    def primary_index(self) -> int:
        """The index of the node that takes writes now."""
        for index in range(len(self.node_ports)):
            with autocommit(self.node_url(index)) as connection:
                if not connection.execute(text("SELECT pg_is_in_recovery()")).scalar():
                    return index
        raise RuntimeError("no node of the formation is a primary")

    def wait_stable(self, timeout: float = 300.0) -> None:
        """Wait until a primary and a secondary are settled."""
        wait_until(self.stable, "pg_auto_failover primary + secondary", timeout)

    def switchover(self) -> None:
        """``pg_autoctl perform switchover``: the standby becomes the primary (blocks until
        done), then wait until the old primary is a settled secondary."""
        self._autoctl("perform", "switchover", "--pgdata", str(self.workdir / "monitor"))
        self.wait_stable()

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` on the primary (it replicates to the standby)."""
        with autocommit(self.node_url(self.primary_index(), "postgres")) as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    # -- lifecycle ---------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        home = self.workdir / "home"
        return {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def _autoctl(self, *args: str) -> str:
        assert self.processes is not None
        return self.processes.run(SERVICE_USER, ["pg_autoctl", *args], self._env())

    def _create(self, kind: str, name: str, port: int, *extra: str) -> None:
        pgdata = str(self.workdir / name)
        self._autoctl(
            "create",
            kind,
            "--pgdata",
            pgdata,
            "--pgport",
            str(port),
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            *extra,
        )
        assert self.processes is not None
        self.processes.spawn(
            name, SERVICE_USER, ["pg_autoctl", "run", "--pgdata", pgdata], self._env()
        )

    def _start(self) -> None:
        self._create("monitor", "monitor", self.monitor_port)
        wait_until(lambda: _answers(self.monitor_url), "pg_auto_failover monitor")
        monitor = self.monitor_url.render_as_string(hide_password=False).replace(
            "postgresql+psycopg2", "postgres"
        )
        for index, port in enumerate(self.node_ports):
            name = f"node{index + 1}"
            self._create(
                "postgres",
                name,
                port,
                "--name",
                name,
                "--dbname",
                self.dbname,
                "--monitor",
                f"{monitor}?sslmode=disable",
            )
            wanted = ["primary", "secondary"][: index + 1] if index else ["single"]
            wait_until(
                lambda w=wanted: (
                    sorted(  # type: ignore[misc]
                        r for r, g in self.states().values() if r == g
                    )
                    == w
                ),
                f"{name} joined",
            )
        self._add_os_user_role()

    def _add_os_user_role(self) -> None:
        user = getpass.getuser()
        if user == SERVICE_USER:
            return
        with autocommit(self.node_url(self.primary_index(), "postgres")) as connection:
            connection.exec_driver_sql(f'CREATE ROLE "{user}" LOGIN SUPERUSER')

    def __enter__(self) -> PgAutoFailover:
        self.workdir = make_cluster_dir("pgautofailover")
        (self.workdir / "home").mkdir()
        give_to(SERVICE_USER, self.workdir)
        self.processes = ProcessGroups(self.workdir)
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.processes is not None:
            self.processes.stop_all()
            for name in ("node2", "node1", "monitor"):
                pgdata = self.workdir / name
                if _pg_running(pgdata):
                    stop = [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(pgdata),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                        self.processes.run(SERVICE_USER, stop, timeout=60)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _answers(url: URL) -> bool:
    with autocommit(url) as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1


def _pg_running(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True
