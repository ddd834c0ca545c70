"""``lake serve``: the backbone as one service for a team (see :mod:`lake.service`)."""

from __future__ import annotations

from typing import Annotated

import typer

from lake.cli.context import state
from lake.cli.output import console
from lake.service.run import serve as run_service


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (beyond loopback only once a token exists).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    features: Annotated[bool, typer.Option("--features", help="Also serve online features "
                                           "(POST /get-online-features), per feature service grants.")] = False,
) -> None:
    """REST API (OpenAPI at /openapi.json) for the catalog, OpenLineage in, queries and data out.

    Requests need `Authorization: Bearer <token>` (a lake token or an OIDC JWT) once any principal
    or token exists; every endpoint checks grants, masks what a principal may not see, and is audited.
    """
    run_service(state(ctx).lake(), host, port, features=features,
                announce=lambda text: console.print(text, highlight=False, markup=False))
