"""Processes of the test clusters (``storelayer.testing.clusters``): started as the service
user in their own process group, recorded in the cluster directory, stopped by PID."""

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from storelayer.testing.replicas import claim_workdir, orphaned_workdirs

#: Name prefix of every cluster directory under the temp dir.
CLUSTER_PREFIX = "storelayer-cluster-"
#: File in a cluster directory listing the process groups started there, one per line.
PIDS_FILE = "pids"
#: Seconds a cluster may take to come up on a loaded 2-core machine.
START_TIMEOUT = 300.0


def free_port(avoid: Sequence[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (none of ``avoid``)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def as_user(user: str) -> list[str]:
    """The command prefix that runs a program as ``user`` (nothing unless root; ``""``:
    this process's user)."""
    return ["runuser", "-u", user, "--"] if user and os.geteuid() == 0 else []


def give_to(user: str, *paths: Path) -> None:
    """Make ``paths`` (recursively) owned by ``user`` when running as root."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def wait_until(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll ``check`` (exceptions count as "not yet") until it is true, or raise
    ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ProcessGroups:
    """The long-running processes of one cluster directory, each the leader of its own
    process group (``setsid``), recorded in the directory so that an orphaned run can be
    cleaned up, stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def run(
        self,
        user: str,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> str:
        """Run a short command as ``user`` to its end; its output, or RuntimeError."""
        done = subprocess.run(
            [*as_user(user), *args],
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.workdir,
        )
        if done.returncode != 0:
            name = Path(args[0]).name
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return done.stdout

    def spawn(
        self, name: str, user: str, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a server as ``user`` in a new session, output to ``<name>.out``."""
        with open(self.workdir / f"{name}.out", "ab") as out:
            process = subprocess.Popen(
                [*as_user(user), *args],
                env=_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.workdir,
            )
        self.running[name] = process
        with open(self.workdir / PIDS_FILE, "a") as pids:
            pids.write(f"{process.pid}\n")
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Signal the process group of ``name`` and wait for its leader to end."""
        process = self.running.pop(name, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """Stop every running process group (``sig``, then SIGKILL after a grace)."""
        for name in list(self.running):
            self.kill(name, sig, timeout=30.0)


def reap_orphans() -> None:
    """Kill the process groups recorded by cluster directories whose test run died, and
    remove those directories."""
    for orphan in orphaned_workdirs(CLUSTER_PREFIX):
        with contextlib.suppress(OSError):
            for line in (orphan / PIDS_FILE).read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.killpg(int(line), signal.SIGKILL)
        shutil.rmtree(orphan, ignore_errors=True)


def make_cluster_dir(kind: str) -> Path:
    """A fresh cluster directory owned by this process, reachable by service users."""
    reap_orphans()
    workdir = Path(tempfile.mkdtemp(prefix=f"{CLUSTER_PREFIX}{kind}-"))
    workdir.chmod(0o755)
    claim_workdir(workdir)
    return workdir


def require_binaries(*names: str) -> None:
    """FileNotFoundError naming the Debian packages when a program is missing."""
    missing = [n for n in names if shutil.which(n) is None and not Path(n).exists()]
    if missing:
        raise FileNotFoundError(
            f"cluster binaries missing: {', '.join(missing)} (Debian: apt-get install -y "
            "pgbouncer postgresql-15-auto-failover pg-auto-failover-cli galera-4 rsync)"
        )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL"))}
    env.update(extra or {})
    return env
