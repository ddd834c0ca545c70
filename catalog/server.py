"""The catalog over HTTP: OpenLineage events in (Marquez-compatible path), search and lineage out."""

from __future__ import annotations

from typing import Any

from catalog.errors import CatalogConnectionError, CatalogError, DatasetNotFoundError
from catalog.lineage import render
from catalog.openlineage import ingest
from catalog.store import Catalog


def create_app(catalog: Catalog) -> Any:
    """A FastAPI app serving ``catalog``.

    ``POST /api/v1/lineage`` takes one OpenLineage RunEvent (or a list) as JSON, the
    same endpoint Marquez exposes, so any OpenLineage HTTP transport can point here.
    """
    # FastAPI is imported only to serve: the rest of the catalog never needs it.
    from fastapi import Body, FastAPI, HTTPException, Query

    app = FastAPI(title="lake catalog", version="1")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **catalog.counts()}

    @app.post("/api/v1/lineage", status_code=201)
    def lineage_in(event: Any = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI's idiom
        events = event if isinstance(event, list) else [event]
        try:
            runs = [ingest(catalog, e) for e in events]
        except CatalogConnectionError as exc:
            raise HTTPException(status_code=503, detail=exc.message) from None
        except CatalogError as exc:
            raise HTTPException(status_code=400, detail=exc.message) from None
        return {"ingested": len(runs), "runs": runs}

    @app.get("/api/v1/search")
    def search(q: str = "", tag: list[str] = Query(default=[]), layer: str | None = None,  # noqa: B008
               owner: str | None = None, column: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return [h.as_dict() for h in catalog.search(q, tags=tag, layer=layer, owner=owner, column=column,
                                                    limit=limit)]

    @app.get("/api/v1/datasets/{name}")
    def dataset(name: str, namespace: str | None = None, version: int | None = None) -> dict[str, Any]:
        try:
            return catalog.show(name, namespace=namespace, version=version)
        except DatasetNotFoundError as exc:
            raise HTTPException(status_code=404, detail=exc.message) from None

    @app.get("/api/v1/lineage/{name}")
    def lineage_out(name: str, direction: str = "both", depth: int = 5, column: str | None = None,
                    version: int | None = None, namespace: str | None = None) -> Any:
        try:
            graph = catalog.lineage(name, direction=direction, depth=depth, column=column, version=version,
                                    namespace=namespace)
        except DatasetNotFoundError as exc:
            raise HTTPException(status_code=404, detail=exc.message) from None
        except CatalogError as exc:
            raise HTTPException(status_code=400, detail=exc.message) from None
        return render(graph, "json")

    return app
