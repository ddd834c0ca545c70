"""Serve the console with uvicorn: loopback only without access rules, bounded waits everywhere."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable

import uvicorn

from catalog.guard import is_loopback
from lake.console import DEFAULT_PORT
from lake.console.access import Access
from lake.console.app import create_app
from lake.errors import ConsoleError
from lake.lakehouse import Lake

KEEP_ALIVE_S = 5
"""Seconds an idle keep-alive connection stays open."""
SHUTDOWN_S = 5
"""Seconds open requests get to finish when the server stops."""
MAX_CONNECTIONS = 64
"""Connections served at once; more get HTTP 503 (a page's requests are a handful)."""


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (port 0 picks a free one); a one-line error when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConsoleError(400, f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port") \
            from exc
    sock.listen(128)
    return sock


def server(lake: Lake, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
           access: Access | None = None) -> tuple[uvicorn.Server, socket.socket, str]:
    """A uvicorn server for the console, its listening socket and its address (not yet running).

    Without ``access`` (the embedded :class:`~lake.console.access.OpenAccess`, everything allowed)
    it listens on loopback only.

    Raises:
        ConsoleError: ``host`` is not loopback without access rules, or the port is taken.
    """
    if access is None and not is_loopback(host):
        raise ConsoleError(400, f"lake ui listens on loopback only (127.0.0.1, ::1), not {host}: it asks for no "
                                "token; `lake serve` serves the console to others behind tokens and grants")
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(create_app(lake, access), host=host, port=bound, log_level="warning",
                            access_log=False, timeout_keep_alive=KEEP_ALIVE_S,
                            timeout_graceful_shutdown=SHUTDOWN_S, limit_concurrency=MAX_CONNECTIONS,
                            h11_max_incomplete_event_size=64 * 1024)
    return uvicorn.Server(config), sock, f"http://{shown}:{bound}/"


def settle_heap() -> None:
    """Collect once, then freeze what is left (the imports, the app, the catalog's metadata), so that
    later full collections walk only what requests allocate. A 500-node lineage answer allocates
    thousands of objects, enough for a full collection every few requests; walking the whole heap
    each time took 100-170 ms on the loaded benchmark machine (the page's p95), 15 ms once frozen."""
    gc.collect()
    gc.freeze()


def serve(lake: Lake, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, access: Access | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the console until interrupted (see :func:`server`); ``on_ready`` gets its address."""
    srv, sock, url = server(lake, host=host, port=port, access=access)
    if on_ready is not None:
        on_ready(url)
    settle_heap()
    try:
        srv.run(sockets=[sock])
    finally:
        sock.close()
