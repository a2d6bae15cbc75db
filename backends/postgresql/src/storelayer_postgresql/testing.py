"""Throwaway PostgreSQL servers for tests that need one of their own (authentication,
restarts, replication), started from the server binaries on the machine.

The shared server of the machine is never touched. As root, the server runs as the
``postgres`` user (PostgreSQL refuses root) through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy.engine import URL

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
