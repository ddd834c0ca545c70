"""A TCP proxy a test can cut: a server (PostgreSQL, Redis, S3...) that goes away and comes back.

Point the client at ``127.0.0.1:proxy.port`` instead of the server. ``stop()`` drops
every open connection at once and stops listening, so the client sees what it sees
when the server dies or the network goes: established connections end, new ones are
refused. ``resume()`` listens again on the same port; the server itself never stopped,
so the client can reconnect.

    proxy = TcpProxy("127.0.0.1", 5432).start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?connect_timeout=3"
    ...
    proxy.stop()     # the database is gone
    proxy.resume()   # and back
    proxy.close()    # at the end (or use it as a context manager)

Plain threads and blocking sockets: one accept thread, two pump threads per connection.
Pumps never hold the GIL while they wait, so a client in the test's own process (even
one that blocks in C code) cannot deadlock it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

_CHUNK = 65536


class TcpProxy:
    """Forwards TCP connections from ``127.0.0.1:port`` to ``target_host:target_port``.

    Args:
        target_host: where the real server listens.
        target_port: its port.
        port: the port to listen on (default: a free one, chosen at the first ``start``
            and kept by ``resume``).
        connect_timeout: seconds to wait for the real server when a client connects;
            a client whose server cannot be reached is disconnected at once.
    """

    def __init__(self, target_host: str, target_port: int, *, port: int = 0,
                 connect_timeout: float = 5.0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self.accepted = 0
        """Connections accepted since the proxy was made (to assert that a client reconnected)."""

    # -------------------------------------------------------------- lifecycle

    def start(self) -> TcpProxy:
        """Listen (on ``port``, or a free port that becomes ``port``); returns the proxy itself."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + 10
            while True:
                try:
                    listener.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    # Rebinding the same port right after stop() can race the kernel; retry briefly.
                    if not self.port or time.monotonic() > deadline:
                        listener.close()
                        raise
                    time.sleep(0.05)
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._accepting = threading.Thread(target=self._accept_loop, args=(listener,),
                                               name=f"tcp-proxy-{self.port}-accept", daemon=True)
            self._accepting.start()
        return self

    def stop(self) -> None:
        """Drop every connection now and stop listening (new connections are refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            accepting, self._accepting = self._accepting, None
            sockets, self._sockets = set(self._sockets), set()
            threads = set(self._threads)
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
            listener.close()
        for sock in sockets:
            _drop(sock)
        if accepting is not None:
            accepting.join(5)
        for thread in threads:
            thread.join(5)

    def resume(self) -> TcpProxy:
        """Listen again on the same port after :meth:`stop`."""
        if not self.port:
            raise RuntimeError("the proxy never started, so it has no port to resume on")
        return self.start()

    def close(self) -> None:
        """Stop for good (same as :meth:`stop`; the proxy can still be resumed)."""
        self.stop()

    @property
    def listening(self) -> bool:
        with self._lock:
            return self._listener is not None

    @property
    def open_connections(self) -> int:
        """Client connections currently forwarded."""
        with self._lock:
            return len(self._sockets) // 2

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "listening" if self.listening else "stopped"
        return f"TcpProxy(127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]}, {state})"

    # ---------------------------------------------------------------- workers

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was shut down by stop()
                return
            with self._lock:
                if self._listener is not listener:  # stop() ran while this connection came in
                    _drop(client)
                    return
                self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:
                _drop(client)
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:
                    _drop(client)
                    _drop(upstream)
                    return
                self._sockets |= {client, upstream}
                for src, dst in ((client, upstream), (upstream, client)):
                    thread = threading.Thread(target=self._pump, args=(src, dst),
                                              name=f"tcp-proxy-{self.port}-pump", daemon=True)
                    self._threads.add(thread)
                    thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # One side ended: end both, as a dead server or network would.
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
                self._threads.discard(threading.current_thread())
            _drop(src)
            _drop(dst)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
