"""A MariaDB Galera cluster for tests: three nodes on free ports of 127.0.0.1, the first
bootstrapping the cluster, the others joining by rsync state transfer. Started from the
Debian packages ``mariadb-server``, ``galera-4`` and ``rsync``; see
docs/operations/clusters.md."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection

from storelayer.testing.clusters_process import (
    ProcessGroups,
    free_port,
    give_to,
    make_cluster_dir,
    require_binaries,
    wait_until,
)

#: The user mariadbd runs as when the tests run as root.
SERVICE_USER = "mysql"
#: The Galera provider library of Debian's galera-4.
PROVIDER = "/usr/lib/galera/libgalera_smm.so"


@dataclass(frozen=True)
class GaleraNode:
    """The ports and directory of one node."""

    name: str
    directory: Path
    port: int
    group_port: int
    ist_port: int
    sst_port: int

    def config(self, cluster_address: str) -> str:
        """The node's ``my.cnf``."""
        d, g = self.directory, self.group_port
        options = f"gmcast.listen_addr=tcp://127.0.0.1:{g};ist.recv_addr=127.0.0.1:{self.ist_port}"
        lines = [
            "[mysqld]",
            f"datadir={d / 'data'}",
            f"port={self.port}",
            f"socket={d / 'mysqld.sock'}",
            f"pid-file={d / 'mysqld.pid'}",
            "bind-address=127.0.0.1",
            f"log-error={d / 'error.log'}",
            f"user={SERVICE_USER}",
            "skip-name-resolve",
            "binlog_format=ROW",
            "default_storage_engine=InnoDB",
            "innodb_autoinc_lock_mode=2",
            "innodb_buffer_pool_size=64M",
            "innodb_log_file_size=48M",
            "innodb_flush_log_at_trx_commit=2",
            "max_connections=300",
            "wsrep_on=ON",
            f"wsrep_provider={PROVIDER}",
            "wsrep_cluster_name=storelayer",
            f"wsrep_cluster_address={cluster_address}",
            f"wsrep_node_name={self.name}",
            f"wsrep_node_address=127.0.0.1:{g}",
            f'wsrep_provider_options="{options};gcache.size=64M"',
            "wsrep_sst_method=rsync",
            f"wsrep_sst_receive_address=127.0.0.1:{self.sst_port}",
            "",
        ]
        return "\n".join(lines)


@contextmanager
def autocommit(url: URL) -> Iterator[Connection]:
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


class GaleraCluster:
    """``size`` Galera nodes, root with an empty password on each. A context manager::

    with GaleraCluster() as cluster:
        db = storelayer.connect(cluster.host_list_url("app"))
    """

    def __init__(self, size: int = 3) -> None:
        require_binaries("mariadbd", "mariadb-install-db", "rsync", PROVIDER)
        taken: list[int] = []
        for _ in range(4 * size):
            taken.append(free_port(taken))
        self.workdir = Path()
        self.ports = [taken[4 * i : 4 * i + 4] for i in range(size)]
        self.nodes: list[GaleraNode] = []
        self.processes: ProcessGroups | None = None

    # -- addresses ---------------------------------------------------------------------

    def url(self, index: int, database: str | None = None) -> URL:
        """Node ``index`` alone, as root."""
        return URL.create(
            "mysql+pymysql",
            username="root",
            host="127.0.0.1",
            port=self.nodes[index].port,
            database=database,
        )

    def host_list_url(self, database: str, order: list[int] | None = None) -> str:
        """``mysql://root@h1:p1,h2:p2,.../database``: the nodes in ``order``."""
        chosen = range(len(self.nodes)) if order is None else order
        hosts = ",".join(f"127.0.0.1:{self.nodes[i].port}" for i in chosen)
        return f"mysql://root@{hosts}/{database}"

    # -- state -------------------------------------------------------------------------

    def _admin(self, index: int, statement: str) -> list[tuple[Any, ...]]:
        """Run ``statement`` on node ``index`` through the bare driver (a node cut off
        from the cluster refuses SQLAlchemy's first-connect queries, not these)."""
        import pymysql  # type: ignore[import-untyped]

        connection = pymysql.connect(
            host="127.0.0.1",
            port=self.nodes[index].port,
            user="root",
            connect_timeout=5,
            autocommit=True,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def status(self, index: int) -> dict[str, str]:
        """Node ``index``'s ``wsrep_%`` status variables."""
        rows = self._admin(index, "SHOW STATUS LIKE 'wsrep_%'")
        return {str(name): str(value) for name, value in rows}

    def isolate(self, index: int, isolated: bool = True) -> None:
        """Cut node ``index`` off the cluster (``gmcast.isolate``; it then answers 1047
        to queries but accepts connections), or join it again (``isolated=False``)."""
        flag = 1 if isolated else 0
        self._admin(index, f"SET GLOBAL wsrep_provider_options = 'gmcast.isolate={flag}'")

    def synced(self, index: int) -> bool:
        """Whether node ``index`` is a ready, synced member of a full primary component."""
        status = self.status(index)
        return (
            status.get("wsrep_ready") == "ON"
            and status.get("wsrep_local_state_comment") == "Synced"
            and status.get("wsrep_cluster_status") == "Primary"
            and status.get("wsrep_cluster_size") == str(len(self.running))
        )

    @property
    def running(self) -> list[int]:
        """The indexes of the nodes whose mariadbd runs."""
        started = self.processes.running if self.processes else {}
        return [i for i, node in enumerate(self.nodes) if node.name in started]

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` (DDL replicates to every node)."""
        self._admin(self.running[0], f"CREATE DATABASE `{name}`")

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name``."""
        self._admin(self.running[0], f"DROP DATABASE IF EXISTS `{name}`")

    # -- faults ------------------------------------------------------------------------

    def kill_node(self, index: int) -> None:
        """``kill -9`` node ``index``'s mariadbd: its connections drop mid-query."""
        assert self.processes is not None
        self.processes.kill(self.nodes[index].name)

    def start_node(self, index: int, timeout: float = 300.0) -> None:
        """Start node ``index`` again; it rejoins (IST) and the call waits until synced."""
        self._spawn(index)
        wait_until(lambda: all(self.synced(i) for i in self.running), "node rejoined", timeout)

    # -- lifecycle ---------------------------------------------------------------------

    def _spawn(self, index: int, *extra: str) -> None:
        assert self.processes is not None
        node = self.nodes[index]
        args = ["mariadbd", f"--defaults-file={node.directory / 'my.cnf'}", *extra]
        self.processes.spawn(node.name, SERVICE_USER, args)

    def _prepare(self) -> None:
        address = "gcomm://" + ",".join(f"127.0.0.1:{p[1]}" for p in self.ports)
        for i, (port, group, ist, sst) in enumerate(self.ports):
            node = GaleraNode(f"n{i + 1}", self.workdir / f"n{i + 1}", port, group, ist, sst)
            (node.directory / "data").mkdir(parents=True)
            (node.directory / "my.cnf").write_text(node.config(address))
            self.nodes.append(node)
        assert self.processes is not None
        first = self.nodes[0].directory / "my.cnf"
        self.processes.run(
            "",
            [
                "mariadb-install-db",
                f"--defaults-file={first}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        )
        give_to(SERVICE_USER, self.workdir)

    def __enter__(self) -> GaleraCluster:
        self.workdir = make_cluster_dir("galera")
        self.processes = ProcessGroups(self.workdir)
        try:
            self._prepare()
            self._spawn(0, "--wsrep-new-cluster")
            wait_until(lambda: self.synced(0), "Galera bootstrap node")
            for index in range(1, len(self.nodes)):
                self._spawn(index)
                wait_until(lambda i=index: self.synced(i), f"Galera node {index + 1} joined")  # type: ignore[misc]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.processes is not None:
            self.processes.stop_all()
        shutil.rmtree(self.workdir, ignore_errors=True)
