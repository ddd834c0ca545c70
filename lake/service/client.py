"""The CLI and the Python API against a running ``lake serve`` instead of the catalog database.

:class:`ServiceClient` speaks the REST API with a bearer token; :class:`RemoteCatalog` has
the catalog's read methods the CLI uses (``search``, ``show``, ``lineage``) with the same
return types, so ``lake catalog search|show|lineage`` work unchanged when ``[service] url``
is set; ``lake sql`` sends its query to ``POST /api/v1/sql``.

Example:
    >>> client = ServiceClient("http://lake.internal:8080", token)
    >>> client.sql("SELECT count(*) FROM gold.daily")
    >>> client.load("training:churn_v1")  # an Arrow table, masked as the service decides
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pyarrow as pa

from catalog.entities import LineageGraph, LineageNode, SearchHit
from lake.config import Settings
from lake.errors import ServiceError


class ServiceClient:
    """A client of the service's REST API.

    Args:
        url: the service (``http://host:8080``).
        token: a lake token or a JWT (sent as ``Authorization: Bearer``).
        timeout: seconds per request.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceClient:
        """The client ``[service] url`` and ``token`` describe."""
        if not settings.service.url:
            raise ServiceError("no [service] url is set (LAKE_SERVICE_URL)")
        token = settings.service.token.get_secret_value() if settings.service.token else None
        return cls(settings.service.url, token)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a 4xx or 5xx answer raises :class:`ServiceError` with the service's reason."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the lake service at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:500]
            raise ServiceError(f"the lake service answered {response.status_code}: {detail}",
                               status=response.status_code)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    # ------------------------------------------------------------------ reads

    def search(self, query: str = "", **filters: Any) -> list[SearchHit]:
        tags = filters.pop("tags", None) or []
        filters.pop("namespace", None)
        filters.pop("quality", None)
        rows = self.get("/api/v1/search", q=query, tag=tags, **filters)
        return [SearchHit(**row) for row in rows]

    def show(self, name: str, *, version: int | None = None, namespace: str | None = None) -> dict[str, Any]:
        return _times(self.get(f"/api/v1/datasets/{name}", version=version))  # type: ignore[no-any-return]

    def lineage(self, name: str, **kwargs: Any) -> LineageGraph:
        kwargs.pop("namespace", None)
        body = self.get(f"/api/v1/lineage/{name}", **kwargs)
        edges = [(e["from"], e["to"]) for e in body["edges"]]
        jobs = {(e["from"], e["to"]): e["job"] for e in body["edges"] if "job" in e}
        return LineageGraph(body["root"], [LineageNode(**n) for n in body["nodes"]], edges, jobs)

    def sql(self, query: str, *, limit: int | None = None) -> pa.Table:
        """A query's result (masked and capped by the service) as an Arrow table."""
        body = self.request("POST", "/api/v1/sql", json={"query": query, "limit": limit}).json()
        columns: list[list[Any]] = ([list(c) for c in zip(*body["rows"], strict=True)] if body["rows"]
                                    else [[] for _ in body["columns"]])
        return pa.table({name: pa.array(col) for name, col in zip(body["columns"], columns, strict=True)})

    def load(self, ref: str, *, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
        """A table or a saved training frame for hand-off (``training:<id or name>``), masked by the service."""
        params = {"version": version, "columns": ",".join(columns) if columns else None}
        response = self.request("GET", f"/api/v1/load/{ref}", params={k: v for k, v in params.items() if v is not None})
        return pa.ipc.open_stream(response.content).read_all()


    def export(self, ref: str, out: str, *, version: int | None = None, columns: list[str] | None = None) -> int:
        """Write what :meth:`load` returns to a local Parquet file; returns the rows written."""
        import pyarrow.parquet as pq  # heavy enough to load only for an export

        table = self.load(ref, version=version, columns=columns)
        pq.write_table(table, out)
        return table.num_rows


class RemoteCatalog(ServiceClient):
    """What the CLI's catalog reads need, from the service; anything else says so."""

    def __getattr__(self, name: str) -> Any:
        raise ServiceError(f"`{name}` is not available through the lake service yet: unset [service] url "
                           "(LAKE_SERVICE_URL) to use the catalog database directly")


def _times(value: Any) -> Any:
    """ISO timestamps under ``*_at`` keys back to datetimes (the CLI formats them)."""
    if isinstance(value, dict):
        return {k: _parse(v) if k.endswith("_at") and isinstance(v, str) else _times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_times(v) for v in value]
    return value


def _parse(text: str) -> Any:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text
