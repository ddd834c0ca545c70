"""Starting the service: ``lake serve`` (and ``lake catalog serve``, its alias)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.guard import check_binding
from lake.console.app import create_app as create_console
from lake.console.serve import settle_heap
from lake.lakehouse import Lake
from lake.service.access import ServiceAccess
from lake.service.app import create_app


def build(lake: Lake, *, features: bool = False, access: ServiceAccess | None = None,
          mounts: Mapping[str, Any] | None = None) -> tuple[Any, ServiceAccess, Any | None]:
    """The app, its access, and the mounted feature server (None without ``features``).

    ``mounts``: apps that authenticate through the access themselves (the console at ``/ui``:
    ``{"/ui": lake.console.app.create_app(lake, access)}``), served without the token guard.
    """
    access = access or ServiceAccess(lake)
    feature_server = None
    if features:
        # Feast loads only when online features are served from here.
        from lake.features.server import FeatureServer

        feature_server = FeatureServer(lake, authenticator=access.authenticator, access=access.feature_access())
    return create_app(lake, access, features=feature_server, mounts=mounts), access, feature_server


def serve(lake: Lake, host: str = "127.0.0.1", port: int = 8080, *, features: bool = False,
          what: str = "the lake service", announce: Any = None) -> None:
    """Serve until interrupted.

    Raises:
        UnsafeBindError: ``host`` is not loopback and requests would need no token.
    """
    import uvicorn  # only to serve

    access = ServiceAccess(lake)
    try:
        check_binding(host, port, access.authenticator, what)
        # The web console at /ui: it signs people in with a token (the lake_token cookie) and asks the
        # same access about every page.
        app, _, feature_server = build(lake, features=features, access=access,
                                       mounts={"/ui": create_console(lake, access)})
        if announce is not None:
            auth = "token required" if access.authenticator.required() else "no token needed (loopback only)"
            announce(f"serving {what} on http://{host}:{port} ({auth}); OpenAPI at /openapi.json, "
                     f"the console at /ui/")
        settle_heap()  # full collections then walk only what requests allocate (the console's lineage p95)
        try:
            # SIGTERM: stop taking connections, let the requests in flight finish (at most 30 s).
            uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
        finally:
            if feature_server is not None:
                feature_server.close()
    finally:
        access.close()
