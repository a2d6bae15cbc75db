"""Test databases on real servers: find the server, create a database per test run,
drop it afterwards. Used by the pytest plugin; usable on its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.config import mask_url, parse_url


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """Whether ``CI`` is set to a true value: then unreachable backends fail the run."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def server_url_variable(backend: Backend) -> str:
    """``STORELAYER_TEST_<NAME>_URL``: the server a test run provisions databases on."""
    return f"STORELAYER_TEST_{backend.name.upper()}_URL"


class Unavailable(Exception):
    """The backend's test server cannot be reached (the reason is the message)."""


def check_reachable(backend: Backend, url: URL, timeout: float = 5.0) -> None:
    """Connect once, or raise ``Unavailable`` saying why (password masked)."""
    from storelayer.config import Settings

    settings = Settings.from_env(url, environ={}, connect_timeout=timeout)
    options = backend.engine_options(url, settings)
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args=options.get("connect_args", {})
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = " ".join(str(getattr(exc, "orig", exc)).split())[:300]
        raise Unavailable(
            f"{backend.name} test server {mask_url(url)} unreachable: {reason}"
        ) from None
    finally:
        engine.dispose()


@dataclass
class Provisioner:
    """Creates one scratch database per backend and drops them all on ``close()``."""

    workdir: Path
    prefix: str = "storelayer_test"
    _created: list[Callable[[], None]] = field(default_factory=list)
    _containers: list[object] = field(default_factory=list)

    def database_name(self) -> str:
        """A fresh database name, unique across parallel workers and runs."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        return f"{self.prefix}_{worker}_{secrets.token_hex(4)}"

    def server_url(self, backend: Backend) -> URL:
        """The server to provision on: the environment variable, else the backend's
        local default; ``Unavailable`` when neither answers and no container starts."""
        variable = server_url_variable(backend)
        raw = os.environ.get(variable) or backend.default_test_url
        if raw is None:
            raise Unavailable(f"{backend.name}: set {variable} to a server URL")
        url = backend.normalize_url(parse_url(raw, source=variable))
        try:
            check_reachable(backend, url)
        except Unavailable:
            container_url = self._container(backend)
            if container_url is None:
                raise
            return container_url
        return url

    def _container(self, backend: Backend) -> URL | None:
        start = getattr(backend, "start_test_container", None)
        if start is None or not docker_answers():
            return None
        context = start()
        url: URL = context.__enter__()
        self._containers.append(context)
        return backend.normalize_url(url)

    def create(self, backend: Backend) -> URL:
        """A new empty database for ``backend``; dropped on ``close()``."""
        name = self.database_name()
        if not backend.features.server:
            self.workdir.mkdir(parents=True, exist_ok=True)
            return backend.provisioning.embedded_test_url(self.workdir, name)
        server = self.server_url(backend)
        url = backend.provisioning.create_database(server, name)
        self._created.append(lambda: backend.provisioning.drop_database(server, name))
        return url

    def close(self) -> None:
        """Drop every database created, stop every container started."""
        while self._created:
            self._created.pop()()
        while self._containers:
            self._containers.pop().__exit__(None, None, None)  # type: ignore[attr-defined]


def docker_answers() -> bool:
    """Whether a Docker engine answers (testcontainers needs one)."""
    try:
        import docker  # type: ignore[import-untyped, import-not-found, unused-ignore]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def provision_or_skip(provisioner: Provisioner, backend: Backend) -> URL:
    """``provisioner.create(backend)``; an unreachable server skips, or fails in CI."""
    try:
        return provisioner.create(backend)
    except Unavailable as exc:
        skip_or_fail(str(exc))


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; fail it instead when ``CI`` is set, because what a
    CI run is configured to test must run there."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set)")
    pytest.skip(reason)
