"""Throwaway MariaDB servers for resilience tests (restarts, kills, a stopped process),
started from the server binaries on the machine; the shared server is never touched.

Until ``storelayer_mysql.testing`` offers a server fixture of its own, this one lives
with the tests that need it. As root, the server drops to the ``mysql`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import URL

SERVICE_USER = "mysql"
START_TIMEOUT = 60.0


def find_binaries() -> tuple[str, str] | None:
    """``(mariadbd, mariadb-install-db)`` when both are installed."""
    server = shutil.which("mariadbd") or shutil.which("mysqld")
    if server is None and Path("/usr/sbin/mariadbd").exists():
        server = "/usr/sbin/mariadbd"
    installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    return (server, installer) if server and installer else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MariaDBServer:
    """One private MariaDB server in a fresh temporary directory on 127.0.0.1:``port``;
    ``root`` connects over TCP without a password."""

    def __init__(self, *, port: int | None = None, options: tuple[str, ...] = ()) -> None:
        found = find_binaries()
        if found is None:
            raise FileNotFoundError("MariaDB server binaries (mariadbd, mariadb-install-db)")
        self.server_binary, self.installer = found
        self.workdir = Path(tempfile.mkdtemp(prefix="storelayer-mariadb-"))
        self.datadir = self.workdir / "data"
        self.port = port or free_port()
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> URL:
        """The server as root, without a default database."""
        return URL.create("mysql+pymysql", username="root", host="127.0.0.1", port=self.port)

    def _own(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """Create the system tables; root may log in over TCP with no password."""
        self._own()
        args = [
            self.installer,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if os.geteuid() == 0:
            args.append(f"--user={SERVICE_USER}")
        # Its own temporary directory: two installs at once collide in /tmp.
        env = {**os.environ, "TMPDIR": str(self.workdir)}
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=120, check=False, env=env
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stderr.strip()[-2000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        args = [
            self.server_binary,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.workdir / 'mysqld.sock'}",
            f"--pid-file={self.workdir / 'mysqld.pid'}",
            f"--log-error={self.workdir / 'error.log'}",
            f"--tmpdir={self.workdir}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=16M",
            *self.options,
        ]
        if os.geteuid() == 0:
            args.append(f"--user={SERVICE_USER}")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.error_log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(1)
                    if s.recv(1):  # the server's greeting
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mariadbd did not start within {START_TIMEOUT}s")

    def error_log(self) -> str:
        """The server's error log, for failure messages."""
        log = self.workdir / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self, *, kill: bool = False) -> None:
        """Shut down (SIGTERM: a clean shutdown; ``kill``: SIGKILL, a crash)."""
        if self.process is None:
            return
        self.resume()
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None

    def restart(self) -> None:
        """Stop, then start on the same port."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Stop the process (SIGSTOP): alive, holding its sockets, answering nothing."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> MariaDBServer:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop(kill=True)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
