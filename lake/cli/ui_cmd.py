"""``lake ui``: the web console on the embedded defaults (no servers needed), loopback only."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from lake.cli.context import state
from lake.cli.output import console
from lake.console import DEFAULT_PORT


def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Loopback address to listen on (127.0.0.1 or ::1).")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the console in a browser.")] = False,
) -> None:
    """Open the web console: search, dataset pages, lineage graph, runs, features, training sets, drift.

    Everyone on this machine may use it (no token), so it listens on loopback only; `lake serve`
    serves it to others behind tokens, grants and masking.
    """
    from lake.console.serve import serve  # only to serve: most CLI calls never need the web stack

    def ready(url: str) -> None:
        console.print(f"lake console on {url} (loopback only; Ctrl-C stops it)", highlight=False)
        if open_browser:
            webbrowser.open(url)

    serve(state(ctx).lake(), host=host, port=port, on_ready=ready)
