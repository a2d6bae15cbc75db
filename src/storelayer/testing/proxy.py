"""A small fault-injecting TCP proxy for tests: put it between storelayer and a real
server, then cut, reset, blackhole, delay or refuse connections without touching the
server. It listens on 127.0.0.1 only.

::

    def test_survives_a_reset(fault_proxy, database_url):
        proxy = fault_proxy(database_url)
        db = storelayer.connect(proxy.url(database_url))
        ...
        proxy.reset()            # every open connection gets a TCP RST
        db.run_in_transaction(work)   # reconnects through the proxy and succeeds

Faults: :meth:`FaultProxy.cut` (orderly close of every open connection),
:meth:`FaultProxy.reset` (abortive close: RST), :meth:`FaultProxy.blackhole` (nothing
is forwarded any more, but nothing is closed: the peer looks hung),
:meth:`FaultProxy.delay` (latency added to every chunk), :meth:`FaultProxy.refuse`
(new connections are reset at once, like a server that is down), and
:meth:`FaultProxy.heal` (back to a transparent proxy).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import URL

LOOPBACK = "127.0.0.1"
_CHUNK = 65536
_TICK = 0.05


def _abort(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self, *, abortive: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        finish = _abort if abortive else _close
        finish(self.client)
        finish(self.upstream)


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``, with faults."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._delay = 0.0
        #: Connections accepted so far.
        self.accepted = 0
        #: Chunks the clients sent: a client waits for each answer, so while one
        #: connection is in use this counts its round trips.
        self.client_sends = 0
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener."""
        self._stopped.set()
        self._flowing.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._acceptor.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def url(self, url: URL) -> URL:
        """``url`` pointed at this proxy instead of the server."""
        return url.set(host=LOOPBACK, port=self.port)

    # -- faults ---------------------------------------------------------------------

    def cut(self) -> int:
        """Close every open connection in an orderly way (FIN); returns how many."""
        return self._close_all(abortive=False)

    def reset(self) -> int:
        """Abort every open connection (RST); returns how many."""
        return self._close_all(abortive=True)

    def blackhole(self) -> None:
        """Stop forwarding in both directions, closing nothing; new connections are
        accepted but never reach the server. The peer looks hung."""
        self._flowing.clear()

    def delay(self, seconds: float) -> None:
        """Add ``seconds`` of latency to every chunk forwarded."""
        self._delay = max(0.0, seconds)

    def refuse(self) -> None:
        """Reset every open connection and every new one, like a server that is down."""
        self._refusing = True
        self.reset()

    def heal(self) -> None:
        """Forward everything again, at once."""
        self._refusing = False
        self._delay = 0.0
        self._flowing.set()

    @property
    def open_connections(self) -> int:
        """Connections currently forwarded."""
        with self._lock:
            return sum(1 for link in self._links if not link.closed.is_set())

    # -- forwarding -----------------------------------------------------------------

    def _close_all(self, *, abortive: bool) -> int:
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close(abortive=abortive)
        return len(links)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], _TICK)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self._refusing:
                _abort(client)
                continue
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        while not self._flowing.wait(_TICK):
            if self._stopped.is_set():
                _close(client)
                return
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _abort(client)
            return
        upstream.settimeout(None)
        link = _Link(client, upstream)
        with self._lock:
            self._links.append(link)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(link, source, sink), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while not link.closed.is_set():
            if not self._flowing.wait(_TICK):
                continue  # blackholed: leave the bytes in the kernel's buffers
            try:
                ready, _, _ = select.select([source], [], [], _TICK)
                if not ready:
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                if source is link.client:
                    self.client_sends += 1
                if self._delay:
                    time.sleep(self._delay)
                sink.sendall(data)
            except (OSError, ValueError):  # ValueError: the other pump closed the socket
                break
        link.close()


ProxyFactory = Callable[[URL], FaultProxy]


@pytest.fixture
def fault_proxy() -> Iterator[ProxyFactory]:
    """``fault_proxy(url)`` starts a :class:`FaultProxy` in front of ``url``'s server;
    use ``proxy.url(url)`` to connect through it. Every proxy stops after the test."""
    started: list[FaultProxy] = []

    def start(url: URL) -> FaultProxy:
        if not url.host or url.port is None:
            raise ValueError(f"fault_proxy needs a URL with a host and a port, got {url!r}")
        proxy = FaultProxy(url.host, url.port).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
