"""The CLI and the Python API against a running ``lake serve`` instead of the catalog database.

:class:`ServiceClient` speaks the REST API with a bearer token; :class:`RemoteCatalog` has
the catalog's methods the CLI uses (``search``, ``show``, ``lineage``, ``runs``, ``run_info``,
``tag``, ``untag``, ``describe``, owners, training datasets, reports) with the same return
types, so ``lake catalog search|show|lineage|runs|run|tag|describe|owner`` work unchanged when
``[service] url`` is set; ``lake sql`` sends its query to ``POST /api/v1/sql``.
:meth:`lake.lakehouse.Lake.connect` gives a ``Lake`` whose catalog and hand-off loads go through it.

Example:
    >>> client = ServiceClient("https://lake.internal", token)
    >>> client.sql("SELECT count(*) FROM gold.daily")
    >>> client.load("training:churn_v1")  # an Arrow table, masked as the service decides
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Self

import httpx
import pyarrow as pa

from catalog.entities import LineageGraph, LineageNode, SearchHit
from lake.config import Settings
from lake.errors import LakeWarning, ServiceError, SplitError


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
        parsed = urllib.parse.urlsplit(self.url)
        if token and parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(f"the token goes to {parsed.hostname} unencrypted (http://): use https:// unless the "
                          "network between you and the service is trusted", LakeWarning, stacklevel=2)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
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
            self._raise(response)
        return response

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:500]
        raise ServiceError(f"the lake service answered {response.status_code}: {detail}", status=response.status_code)

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
        return _times(self.get(f"/api/v1/datasets/{_seg(name)}", version=version))  # type: ignore[no-any-return]

    def lineage(self, name: str, **kwargs: Any) -> LineageGraph:
        kwargs.pop("namespace", None)
        body = self.get(f"/api/v1/lineage/{_seg(name)}", **kwargs)
        edges = [(e["from"], e["to"]) for e in body["edges"]]
        jobs = {(e["from"], e["to"]): e["job"] for e in body["edges"] if "job" in e}
        return LineageGraph(body["root"], [LineageNode(**n) for n in body["nodes"]], edges, jobs)

    def runs(self, *, job: str | None = None, status: str | None = None, dataset: str | None = None,
             limit: int = 50, parent: str | None = None) -> list[dict[str, Any]]:
        if parent is not None:
            raise ServiceError("runs by parent are not available through the lake service yet")
        return _times(self.get("/api/v1/runs", job=job, status=status, dataset=dataset, limit=limit))  # type: ignore[no-any-return]

    def run_info(self, run_id: str) -> dict[str, Any]:
        return _times(self.get(f"/api/v1/runs/{_seg(run_id)}"))  # type: ignore[no-any-return]

    def datasets(self, *, layer: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.get("/api/v1/datasets", layer=layer)  # type: ignore[no-any-return]

    def training_datasets(self, *, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return _times(self.get("/api/v1/training", name=name, limit=limit))  # type: ignore[no-any-return]

    def training_dataset(self, ref: str) -> dict[str, Any]:
        return _times(self.get(f"/api/v1/training/{_seg(ref)}"))  # type: ignore[no-any-return]

    def reports(self, *, dataset: str | None = None, kind: str | None = None, limit: int = 50,
                namespace: str | None = None) -> list[dict[str, Any]]:
        return _times(self.get("/api/v1/reports", dataset=dataset, kind=kind, limit=limit))  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- writes

    def tag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        self.request("POST", f"/api/v1/datasets/{_seg(name)}/tags", json={"tag": tag, "column": column})

    def untag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        self.request("DELETE", f"/api/v1/datasets/{_seg(name)}/tags/{_seg(tag)}",
                     params={"column": column} if column is not None else None)

    def describe(self, name: str, text: str, *, column: str | None = None, namespace: str | None = None) -> None:
        self.request("PUT", f"/api/v1/datasets/{_seg(name)}/description", json={"text": text, "column": column})

    def add_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        self.request("POST", f"/api/v1/datasets/{_seg(name)}/owners/{_seg(owner)}")

    def remove_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/api/v1/datasets/{_seg(name)}/owners/{_seg(owner)}")

    def sql(self, query: str, *, limit: int | None = None) -> pa.Table:
        """A query's result (masked and capped by the service) as an Arrow table."""
        body = self.request("POST", "/api/v1/sql", json={"query": query, "limit": limit}).json()
        columns: list[list[Any]] = ([list(c) for c in zip(*body["rows"], strict=True)] if body["rows"]
                                    else [[] for _ in body["columns"]])
        return pa.table({name: pa.array(col) for name, col in zip(body["columns"], columns, strict=True)})

    def load(self, ref: str, *, version: int | None = None, columns: list[str] | None = None,
             limit: int | None = None) -> pa.Table:
        """A table or a saved training frame for hand-off (``training:<id or name>``), masked by the service
        (its first ``limit`` rows, or all)."""
        params = {"version": version, "columns": ",".join(columns) if columns else None, "limit": limit}
        response = self.request("GET", f"/api/v1/load/{_seg(ref)}", params={k: v for k, v in params.items() if v is not None})
        _check_version(response, ref, version)
        with _readable(ref):
            reader = pa.ipc.open_stream(response.content)
            return pa.Table.from_batches([_valid(b) for b in reader], schema=reader.schema)

    def load_metadata(self, ref: str, *, version: int | None = None) -> dict[str, Any]:
        """What the service tells about the data :meth:`load` would hand over (``DatasetMetadata`` as JSON,
        with the column types as they leave the service, masked ones included)."""
        return self.get(f"/api/v1/load/{_seg(ref)}/metadata", version=version)  # type: ignore[no-any-return]

    def stream(self, ref: str, *, version: int | None = None, columns: list[str] | None = None,
               unmasked: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """The batches of :meth:`load` as they arrive (memory bounded by one batch, not the table).

        ``unmasked``: columns that must arrive unmasked (a split's keys): the service says which
        columns it masks in this answer (``X-Lake-Masked``), and a masked one among them refuses it.

        Raises:
            ServiceError: the service refused, or the stream broke off.
            SplitError: a column of ``unmasked`` arrives masked.
        """
        params = {k: v for k, v in {"version": version, "columns": ",".join(columns) if columns else None}.items()
                  if v is not None}
        try:
            with self.http.stream("GET", f"/api/v1/load/{_seg(ref)}", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise(response)
                _check_version(response, ref, version)
                _check_unmasked(response, ref, unmasked)
                with _readable(ref):
                    for batch in pa.ipc.open_stream(io.BufferedReader(_Chunks(response.iter_bytes()), 1 << 20)):
                        yield _valid(batch)
        except httpx.HTTPError as exc:
            raise ServiceError(f"the lake service's stream of {ref} broke off: {exc}") from None

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


def _check_version(response: httpx.Response, ref: str, version: int | None) -> None:
    """Refuse rows of another version than the one asked for (``X-Lake-Version``)."""
    sent = response.headers.get("x-lake-version")
    if version is not None and sent is not None and sent != str(version):
        raise ServiceError(f"the lake service sent version {sent[:20]} of {ref} for version {version}")


def _check_unmasked(response: httpx.Response, ref: str, unmasked: Sequence[str]) -> None:
    """Refuse an answer that masks a column that must arrive unmasked (``X-Lake-Masked``)."""
    if not unmasked:
        return
    try:
        masked = json.loads(response.headers.get("x-lake-masked") or "[]")
        if not isinstance(masked, list):
            raise ValueError("not a list")
    except ValueError as exc:
        raise ServiceError(f"the lake service's X-Lake-Masked header for {ref} is not a list of columns: {exc}") from None
    keys = [k for k in unmasked if k in masked]
    if keys:
        raise SplitError(f"split key column(s) {keys} of {ref} now reach you masked, so the split would not be the "
                         "one made on the lake; key the split by an unmasked column, or ask for unmask")


@contextlib.contextmanager
def _readable(ref: str) -> Iterator[None]:
    """Bytes the service sent that Arrow cannot read are a :class:`ServiceError` (a truncated body is a bare
    ``OSError``, a forged length a ``MemoryError``)."""
    try:
        yield
    except (pa.ArrowException, OSError, MemoryError) as exc:
        raise ServiceError(f"the lake service sent an unreadable stream for {ref}: {str(exc)[:300]}") from None


def _valid(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` once fully validated (offsets, UTF-8): the IPC reader checks only the structure, and these
    bytes came over the network."""
    batch.validate(full=True)
    return batch


class _Chunks(io.RawIOBase):
    """An iterator of byte chunks as a readable file (what Arrow's stream reader takes)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._left))
        view[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def _seg(value: object) -> str:
    """One path segment of a request (a dataset name, a reference, an id), escaped."""
    return urllib.parse.quote(str(value), safe=":@.")


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
