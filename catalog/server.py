"""The catalog over HTTP: OpenLineage events in (Marquez-compatible path), search and lineage out.

Behind :class:`catalog.guard.Guard`: a bearer token where one is required, a body size limit.
Every refusal is a 4xx with a reason (``{"detail": "..."}``): 400 for a body that is not JSON
or nests too deeply, 401 without a valid token, 404 for an unknown dataset, 413 for a body too
large, 422 for a malformed event or parameter. 503 means the catalog database is down; a 500
is a bug.
"""

from __future__ import annotations

import asyncio
from typing import Any

from catalog.errors import (
    CatalogConnectionError,
    CatalogError,
    CatalogInputError,
    LineageEventError,
    RequestError,
)
from catalog.guard import (
    PRINCIPAL_KEY,
    Guard,
    Limits,
    Receive,
    Scope,
    Send,
    decode_json,
    read_body,
    respond,
)
from catalog.lineage import render
from catalog.openlineage import ingest_batch
from catalog.search import parse_query
from catalog.store import Catalog
from catalog.tokens import Authenticator, Principal


def status_of(exc: CatalogError) -> int:
    """The HTTP status of a catalog error: the client's mistake is a 4xx, a database that is down 503."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, CatalogConnectionError):
        return 503
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, LineageEventError | CatalogInputError):
        return 422
    return 400


def create_app(catalog: Catalog, *, authenticator: Authenticator | None = None, limits: Limits | None = None) -> Any:
    """An ASGI app serving ``catalog`` (FastAPI behind :class:`~catalog.guard.Guard`).

    ``POST /api/v1/lineage`` takes one OpenLineage RunEvent or a list of them (stored all or
    none), the endpoint Marquez exposes, so any OpenLineage HTTP transport can point here.

    Args:
        catalog: the catalog to serve.
        authenticator: who may call (default: the catalog's tokens, required once one exists).
        limits: body size and JSON depth limits (default :class:`~catalog.guard.Limits`).
    """
    # FastAPI is imported only to serve: the rest of the catalog never needs it.
    from fastapi import FastAPI, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    limits = limits or Limits()
    authenticator = authenticator or catalog.authenticator()
    api = FastAPI(title="lake catalog", version="1")

    @api.exception_handler(CatalogError)
    async def catalog_error(_: Any, exc: CatalogError) -> Any:
        return JSONResponse({"detail": exc.message}, status_code=status_of(exc))

    @api.exception_handler(RequestValidationError)
    async def bad_parameter(_: Any, exc: RequestValidationError) -> Any:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": problems}, status_code=422)

    @api.get("/api/v1/search")
    def search(q: str = "", tag: list[str] = Query(default=[]),  # noqa: B008
               layer: str | None = None, owner: str | None = None, column: str | None = None,
               limit: int = Query(default=20, ge=1, le=500)) -> Any:
        query = parse_query(q)
        hits = [h.as_dict() for h in catalog.search(q, tags=tag, layer=layer, owner=owner, column=column,
                                                    limit=limit)]
        headers = {"X-Search-Note": query.note} if query.note else None
        return JSONResponse(hits, headers=headers)

    @api.get("/api/v1/datasets/{name}")
    def dataset(name: str, namespace: str | None = None, version: int | None = None) -> dict[str, Any]:
        return catalog.show(name, namespace=namespace, version=version)

    @api.get("/api/v1/lineage/{name}")
    def lineage_out(name: str, direction: str = "both", depth: int = Query(default=5, ge=1, le=50),
                    column: str | None = None, version: int | None = None, namespace: str | None = None) -> Any:
        graph = catalog.lineage(name, direction=direction, depth=depth, column=column, version=version,
                                namespace=namespace)
        return render(graph, "json")

    async def health(scope: Scope, send: Send) -> None:
        principal: Principal = scope.get(PRINCIPAL_KEY) or Principal("anonymous")
        try:
            required = await asyncio.to_thread(authenticator.required)
            body = {"status": "ok"} if principal.anonymous and required else {  # counts only with a token
                "status": "ok", **await asyncio.to_thread(catalog.counts)}
        except CatalogConnectionError as exc:
            return await respond(send, 503, {"status": "unavailable", "detail": exc.message})
        await respond(send, 200, body)

    async def lineage_in(receive: Receive, send: Send) -> None:
        # Read here, not by FastAPI: the body's size and nesting are bounded before it is parsed.
        try:
            payload = decode_json(await read_body(receive, limits.max_body_bytes), limits)
            events = payload if isinstance(payload, list) else [payload]
            if not events:
                raise RequestError(422, "an empty list of events: send one OpenLineage RunEvent or a list of them")
            runs = await asyncio.to_thread(ingest_batch, catalog, events)
        except CatalogError as exc:
            return await respond(send, status_of(exc), {"detail": exc.message})
        await respond(send, 201, {"ingested": len(runs), "runs": runs})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/v1/lineage" and scope["method"] == "POST":
            return await lineage_in(receive, send)
        if scope["type"] == "http" and scope["path"] == "/health" and scope["method"] == "GET":
            return await health(scope, send)
        await api(scope, receive, send)

    return Guard(app, authenticator, limits)
