"""The service's ASGI app: the catalog as a REST API, OpenLineage in, queries and data out, all checked.

Every endpoint under ``/api/v1`` asks :class:`~lake.service.access.ServiceAccess` first (403 with
a JSON reason when the principal lacks the grant; the decision is audited), and data leaving
(previews, ``sql``, hand-off loads and training frames, online features) is masked for a
principal without ``unmask``. In front of it all, :class:`catalog.guard.Guard`: bearer tokens
(lake tokens or OIDC JWTs), required once any principal exists; the body size limit (413).
Errors are JSON ``{"detail": "..."}``: 400 a bad request, 401 no valid token, 403 no grant,
404 unknown, 413 too large, 422 malformed; 503 the catalog is down. A 500 is a bug.

The OpenAPI document is at ``/openapi.json`` (``/docs`` renders it).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.routing import Mount

from catalog import access as acl
from catalog.errors import CatalogError, PermissionDeniedError, RequestError
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
from catalog.server import status_of
from catalog.tokens import whoami
from lake import metrics
from lake.errors import LakeError, SQLError, TableNotFoundError, VersionNotFoundError
from lake.handoff.load import Dataset, load, parse_ref
from lake.lakehouse import Lake, is_location
from lake.masking import mask_table
from lake.service.access import ServiceAccess, dataset_of, object_of
from lake.sql import LakeSQL, check_policy_query

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class SQLRequest(BaseModel):
    """``POST /api/v1/sql``."""

    query: str = Field(max_length=100_000, description="One SELECT over lake tables by name.")
    limit: int | None = Field(default=None, ge=1, description="At most this many rows (capped by the service).")


class GrantRequest(BaseModel):
    principal: str = Field(max_length=255)
    privilege: str = Field(max_length=16)
    object: str = Field(max_length=512)


class PrincipalRequest(BaseModel):
    name: str = Field(max_length=255)
    kind: str = Field(default="user", max_length=16)
    description: str | None = Field(default=None, max_length=2000)


class TokenRequest(BaseModel):
    principal: str = Field(max_length=255)
    expires_in_seconds: int | None = Field(default=None, ge=60, le=10 * 365 * 86_400)
    description: str | None = Field(default=None, max_length=2000)


class TagRequest(BaseModel):
    tag: str = Field(max_length=128)
    column: str | None = Field(default=None, max_length=512)


class DescriptionRequest(BaseModel):
    text: str = Field(max_length=100_000)
    column: str | None = Field(default=None, max_length=512)


def status_of_lake(exc: LakeError) -> int:
    """The HTTP status of any project error: a client's mistake is a 4xx."""
    if isinstance(exc, CatalogError):
        return status_of(exc)
    if isinstance(exc, LookupError | TableNotFoundError | VersionNotFoundError):
        return 404
    return 400


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
        return None
    if isinstance(value, list):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {k: _cell(v) for k, v in value.items()}
    if isinstance(value, str | int | bool) or value is None or isinstance(value, float):
        return value
    return str(value)  # Decimal, UUID, intervals...


def rows_of(table: pa.Table, limit: int) -> dict[str, Any]:
    """An Arrow table as ``{"columns", "types", "rows", "truncated"}``."""
    head = table.slice(0, limit)
    columns = head.column_names
    data = [c.to_pylist() for c in head.columns]
    return {"columns": columns, "types": [str(t) for t in head.schema.types],
            "rows": [[_cell(col[i]) for col in data] for i in range(head.num_rows)],
            "truncated": table.num_rows > limit}


def create_app(lake: Lake, access: ServiceAccess | None = None, *, limits: Limits | None = None,
               features: Any | None = None, mounts: Mapping[str, Any] | None = None) -> Any:
    """The service as an ASGI application.

    Args:
        lake: the lake (with its catalog) to serve.
        access: authentication, grants, masking and audit (default: from the lake's settings).
        limits: body size and JSON depth (default from ``[server]``).
        features: a feature server (:class:`lake.features.server.FeatureServer`) to serve at
            ``POST /get-online-features``, built with the same access (None: not served).
        mounts: ASGI apps served under a path prefix *without* the bearer-token guard, because they
            authenticate themselves through ``access`` (the web console at ``/ui``: its sign-in page
            takes a token into the ``lake_token`` cookie, ``ServiceAccess.principal`` reads it).
    """
    access = access or ServiceAccess(lake)
    server = lake.settings.server
    limits = limits or Limits(server.max_body_bytes, server.max_json_depth)
    catalog = lake.catalog
    namespace = lake.settings.catalog.namespace
    max_rows = lake.settings.service.max_rows
    api = FastAPI(title="lake", version="1", description="The data lake and feature store as a service: catalog, "
                  "lineage, queries and data with grants, masking and an audit trail.")
    api.state.access = access

    def who(request: Request) -> str | None:
        principal = request.scope.get(PRINCIPAL_KEY)
        return principal.name if principal is not None else None

    def readable(request: Request, names: list[str]) -> set[str]:
        principal = who(request)
        return {n for n in names if access.can(principal, "read", object_of(n))}

    @api.exception_handler(LakeError)
    async def lake_error(request: Request, exc: LakeError) -> Any:
        if not isinstance(exc, PermissionDeniedError):  # denials were audited where decided
            access.audit(who(request), "error", request.url.path[:512], "error", detail=exc.message[:500])
        return JSONResponse({"detail": exc.message}, status_code=status_of_lake(exc))

    @api.exception_handler(RequestValidationError)
    async def bad_parameter(_: Any, exc: RequestValidationError) -> Any:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": problems[:2000]}, status_code=422)

    # ------------------------------------------------------------------ catalog reads

    @api.get("/api/v1/whoami", tags=["access"])
    def whoami_(request: Request) -> dict[str, Any]:
        """The principal of this request and the grants it holds directly or through its groups."""
        principal = who(request)
        snap = access.policy.snapshot()
        groups = sorted(access.policy.closure(principal))
        held = [{"principal": g, "privilege": p, "object": o} for g in groups
                for o, privileges in snap.held.get(g, {}).items() for p in sorted(privileges)]
        return {"principal": principal, "enforced": access.enforced(), "groups": groups, "grants": held}

    @api.get("/api/v1/search", tags=["catalog"])
    def search(request: Request, q: str = Query(default="", max_length=1000),
               tag: list[str] = Query(default=[]),  # noqa: B008
               layer: str | None = None, owner: str | None = None, column: str | None = None,
               limit: int = Query(default=20, ge=1, le=500)) -> Any:
        """Ranked search; only datasets the principal may read are listed."""
        hits = [h.as_dict() for h in catalog.search(q, tags=tag, layer=layer, owner=owner, column=column,
                                                    limit=limit)]
        allowed = readable(request, [h["name"] for h in hits])
        access.audit(who(request), "search", "lake", "allowed", detail=q[:200])
        return [h for h in hits if h["name"] in allowed]

    @api.get("/api/v1/datasets", tags=["catalog"])
    def datasets(request: Request, layer: str | None = None, kind: str | None = None) -> Any:
        """Datasets the principal may read."""
        rows = [d for d in catalog.datasets(layer=layer, namespace=namespace) if kind is None or d["kind"] == kind]
        allowed = readable(request, [d["name"] for d in rows])
        access.audit(who(request), "list", layer or "lake", "allowed")
        return [d for d in rows if d["name"] in allowed]

    def show(request: Request, name: str, version: int | None, action: str = "read") -> dict[str, Any]:
        access.check(who(request), "read", object_of(name), audit_as=action, version=version)
        return catalog.show(name, namespace=namespace, version=version)

    @api.get("/api/v1/datasets/{name}", tags=["catalog"])
    def dataset(request: Request, name: str, version: int | None = None) -> dict[str, Any]:
        """Everything about a dataset: schema, versions, owners, tags, description, quality, neighbours."""
        return show(request, name, version)

    @api.get("/api/v1/datasets/{name}/versions", tags=["catalog"])
    def versions(request: Request, name: str) -> Any:
        return show(request, name, None)["versions"]

    @api.get("/api/v1/datasets/{name}/schema", tags=["catalog"])
    def schema(request: Request, name: str, version: int | None = None) -> Any:
        return show(request, name, version)["schema"]

    @api.get("/api/v1/datasets/{name}/quality", tags=["catalog"])
    def quality(request: Request, name: str, version: int | None = None) -> Any:
        return show(request, name, version)["quality"]

    @api.get("/api/v1/lineage/{name}", tags=["catalog"])
    def lineage(request: Request, name: str, direction: str = "both", depth: int = Query(default=5, ge=1, le=50),
                column: str | None = None, version: int | None = None) -> Any:
        """Table- or column-level lineage (per version); nodes the principal may not read are left out."""
        access.check(who(request), "read", object_of(name), audit_as="lineage", version=version)
        graph = render(catalog.lineage(name, direction=direction, depth=depth, column=column, version=version,
                                       namespace=namespace), "json")
        dataset_names = {n["name"] for n in graph["nodes"]}
        hidden = dataset_names - (readable(request, sorted(dataset_names)) | {name})
        graph["nodes"] = [n for n in graph["nodes"] if n["name"] not in hidden]
        graph["edges"] = [e for e in graph["edges"] if not _names_any(e["from"], hidden)
                          and not _names_any(e["to"], hidden)]
        graph["hidden_datasets"] = len(hidden)
        return graph

    @api.get("/api/v1/runs", tags=["catalog"])
    def runs(request: Request, job: str | None = None, status: str | None = None, dataset: str | None = None,
             limit: int = Query(default=50, ge=1, le=1000)) -> Any:
        """Recent runs (of a dataset: read on it; all of them: read on the lake)."""
        access.check(who(request), "read", object_of(dataset) if dataset else "lake", audit_as="runs")
        return catalog.runs(job=job, status=status, dataset=dataset, limit=limit)

    @api.get("/api/v1/runs/{run_id}", tags=["catalog"])
    def run(request: Request, run_id: str) -> Any:
        access.check(who(request), "read", "lake", audit_as="runs")
        return catalog.run_info(run_id)

    @api.get("/api/v1/training", tags=["catalog"])
    def trainings(request: Request, name: str | None = None, limit: int = Query(default=50, ge=1, le=1000)) -> Any:
        """Saved training datasets the principal may read (``training.<name>``)."""
        rows = catalog.training_datasets(name=name, limit=limit)
        allowed = readable(request, [f"training.{r['name']}" for r in rows])
        access.audit(who(request), "list", "training", "allowed")
        return [r for r in rows if f"training.{r['name']}" in allowed]

    @api.get("/api/v1/training/{ref}", tags=["catalog"])
    def training(request: Request, ref: str) -> Any:
        info = catalog.training_dataset(ref)
        access.check(who(request), "read", f"training.{info['name']}", audit_as="read")
        return info

    @api.get("/api/v1/reports", tags=["catalog"])
    def reports(request: Request, dataset: str | None = None, kind: str | None = None,
                limit: int = Query(default=50, ge=1, le=1000)) -> Any:
        """Drift and other monitoring reports (of a dataset: read on it; all: read on the lake)."""
        access.check(who(request), "read", object_of(dataset) if dataset else "lake", audit_as="reports")
        return catalog.reports(dataset=dataset, kind=kind, limit=limit, namespace=namespace)

    @api.get("/api/v1/features", tags=["catalog"])
    def features_(request: Request) -> Any:
        """Feature views and services the principal may read."""
        rows = [d for d in catalog.datasets(namespace=namespace)
                if d["kind"] in ("feature_view", "on_demand_feature_view", "feature_service")]
        allowed = readable(request, [d["name"] for d in rows])
        access.audit(who(request), "list", "features", "allowed")
        return [{**d, "object": object_of(d["name"])} for d in rows if d["name"] in allowed]

    # ------------------------------------------------------------------ catalog writes

    @api.post("/api/v1/datasets/{name}/tags", tags=["catalog"], status_code=201)
    def add_tag(request: Request, name: str, body: TagRequest) -> Any:
        """Tag a dataset or a column (manage: a tag can decide masking)."""
        access.check(who(request), "manage", object_of(name), audit_as="tag")
        catalog.tag(name, body.tag, column=body.column, namespace=namespace)
        access.policy.invalidate()
        return {"dataset": name, "tag": body.tag, "column": body.column}

    @api.delete("/api/v1/datasets/{name}/tags/{tag}", tags=["catalog"])
    def remove_tag(request: Request, name: str, tag: str, column: str | None = None) -> Any:
        access.check(who(request), "manage", object_of(name), audit_as="untag")
        catalog.untag(name, tag, column=column, namespace=namespace)
        access.policy.invalidate()
        return {"dataset": name, "removed": tag, "column": column}

    @api.put("/api/v1/datasets/{name}/description", tags=["catalog"])
    def describe(request: Request, name: str, body: DescriptionRequest) -> Any:
        """Set a dataset's or a column's description (write)."""
        access.check(who(request), "write", object_of(name), audit_as="describe")
        catalog.describe(name, body.text, column=body.column, namespace=namespace)
        return {"dataset": name, "column": body.column}

    @api.post("/api/v1/datasets/{name}/owners/{owner}", tags=["catalog"], status_code=201)
    def add_owner(request: Request, name: str, owner: str) -> Any:
        access.check(who(request), "manage", object_of(name), audit_as="owner")
        catalog.add_owner(name, owner, namespace=namespace)
        return {"dataset": name, "owner": owner}

    @api.delete("/api/v1/datasets/{name}/owners/{owner}", tags=["catalog"])
    def remove_owner(request: Request, name: str, owner: str) -> Any:
        access.check(who(request), "manage", object_of(name), audit_as="owner")
        catalog.remove_owner(name, owner, namespace=namespace)
        return {"dataset": name, "removed": owner}

    # ------------------------------------------------------------------ data out

    def table_of(ref: str) -> str:
        if is_location(ref):
            raise RequestError(400, "through the service, name a table (layer.name) or a training dataset, not a "
                                    "path")
        return ref

    def loaded(principal: str | None, ref: str, version: int | None) -> Dataset:
        """``load`` behind the read grant (audited as ``load``). A table is checked before it is looked up,
        so without read an unknown table or version answers 403 like a known one; a training dataset is
        found first (the table of its frame is what grants name)."""
        text, version = parse_ref(table_of(ref), version)
        table = None if text.startswith("training:") or "." not in text else text.lower()  # as lake.table has it
        if table is not None:
            access.check(principal, "read", object_of(table), audit_as="load", version=version)
        ds = load(lake, text, version=version)
        if ds.table.name != table:
            access.check(principal, "read", object_of(ds.table.name), audit_as="load", version=ds.metadata.version)
        return ds

    @api.get("/api/v1/datasets/{name}/preview", tags=["data"])
    def preview(request: Request, name: str, version: int | None = None,
                limit: int = Query(default=20, ge=1, le=1000)) -> Any:
        """The first rows of a table, masked for a principal without unmask."""
        principal = who(request)
        access.check(principal, "read", object_of(table_of(name)), audit_as="preview", version=version)
        data = load(lake, name, version=version).arrow_dataset().head(min(limit, max_rows))
        return rows_of(access.mask(principal, name, data), limit)

    @api.get("/api/v1/load/{ref}/metadata", tags=["data"])
    def load_metadata(request: Request, ref: str, version: int | None = None) -> Any:
        """What a load of ``ref`` hands over: its ``DatasetMetadata`` (sources at versions, rows, content
        hash, quality), the columns typed as they leave the service (masked ones included)."""
        principal = who(request)
        ds = loaded(principal, ref, version)
        name = ds.table.name
        masked = access.masks(principal, name)
        schema = mask_table(ds.schema.empty_table(), masked, access.salt).schema if masked else ds.schema
        meta = ds.metadata.as_dict()
        meta["columns"] = [{"name": f.name, "type": str(f.type), "nullable": f.nullable,
                            **({"masked": masked[f.name]} if f.name in masked else {})} for f in schema]
        meta["arrow_schema"] = base64.b64encode(schema.serialize().to_pybytes()).decode()  # the stream's schema
        return meta

    @api.get("/api/v1/load/{ref}", tags=["data"])
    def load_(request: Request, ref: str, version: int | None = None, columns: str | None = None,
              format: str = Query(default="arrow", pattern="^(arrow|json)$"),
              limit: int | None = Query(default=None, ge=1)) -> Any:
        """A curated table or a saved training frame (``training:<id or name>``) for hand-off: an Arrow IPC
        stream (or JSON rows up to the service's row cap), masked for a principal without unmask."""
        principal = who(request)
        ds = loaded(principal, ref, version)
        name = ds.table.name
        wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        masked = access.masks(principal, name)
        if format == "json":
            data = ds.arrow_dataset().head(min(limit or max_rows, max_rows), columns=wanted)
            return rows_of(mask_table(data, masked, access.salt), min(limit or max_rows, max_rows))
        reader = ds.batches(columns=wanted)

        def stream() -> Iterator[bytes]:
            sink = io.BytesIO()
            writer: pa.ipc.RecordBatchStreamWriter | None = None
            left = limit
            for batch in reader:
                if left is not None:
                    if left <= 0:
                        break
                    batch = batch.slice(0, left)
                    left -= batch.num_rows
                table = mask_table(pa.Table.from_batches([batch]), masked, access.salt)
                if writer is None:
                    writer = pa.ipc.new_stream(sink, table.schema)
                writer.write_table(table)
                yield sink.getvalue()
                sink.seek(0)
                sink.truncate()
            if writer is None:
                schema = mask_table(reader.schema.empty_table(), masked, access.salt).schema
                writer = pa.ipc.new_stream(sink, schema)
            writer.close()
            yield sink.getvalue()

        return StreamingResponse(stream(), media_type=ARROW_STREAM,
                                 headers={"X-Lake-Version": str(ds.metadata.version),
                                          # the columns this answer masks (JSON, ASCII): a client keying a
                                          # split by one of them would split other values than the lake's
                                          "X-Lake-Masked": json.dumps(sorted(
                                              c for c in masked if wanted is None or c in wanted))})

    @api.post("/api/v1/sql", tags=["data"])
    def sql(request: Request, body: SQLRequest) -> Any:
        """One SELECT over lake tables by name (DuckDB); each table read needs read, and its masked columns
        are masked inside the query (no alias or expression gets around it)."""
        principal = who(request)
        limit = min(body.limit or max_rows, max_rows)
        policy = _QueryPolicy(access, principal) if access.enforce else None
        if policy is not None:
            check_policy_query(body.query)  # refused before a session over the lake is opened
        db = LakeSQL(lake, policy=policy)
        try:
            rel = db.sql(body.query)
            if rel is None:
                raise SQLError("the statement returns no rows")
            try:
                table = rel.limit(limit + 1).to_arrow_table()
            except Exception as exc:  # DuckDB fails some queries only while running them
                raise db.error(exc) from None
        finally:
            db.close()
        access.audit(principal, "sql", ",".join(policy.read) if policy else "lake", "allowed",
                     detail=body.query[:500])
        return rows_of(table, limit)

    # ------------------------------------------------------------------ access

    @api.get("/api/v1/principals", tags=["access"])
    def principals(request: Request) -> Any:
        access.check(who(request), "manage", "lake", audit_as="principals")
        with catalog.reading() as s:
            return acl.principals(s)

    @api.post("/api/v1/principals", tags=["access"], status_code=201)
    def create_principal(request: Request, body: PrincipalRequest) -> Any:
        principal = who(request)
        access.check(principal, "manage", "lake", audit_as="principal")
        with catalog.writing() as s:
            row = acl.create_principal(s, body.name, body.kind, description=body.description, created_by=principal)
        access.policy.invalidate()
        return row

    @api.get("/api/v1/grants", tags=["access"])
    def grants(request: Request, principal: str | None = None, object: str | None = None) -> Any:
        """Grants on an object (manage on it) or of a principal (one's own, or manage on the lake)."""
        me = who(request)
        if object is not None:
            access.check(me, "manage", acl.check_object(object), audit_as="grants")
        elif principal is None or principal != me:
            access.check(me, "manage", "lake", audit_as="grants")
        with catalog.reading() as s:
            return acl.grants(s, principal=principal, obj=object)

    @api.post("/api/v1/grants", tags=["access"], status_code=201)
    def grant(request: Request, body: GrantRequest) -> Any:
        """Grant a privilege on an object (manage on that object)."""
        me = who(request)
        obj = acl.check_object(body.object)
        access.check(me, "manage", obj, audit_as="grant")
        with catalog.writing() as s:
            new = acl.grant(s, body.principal, body.privilege, obj, granted_by=me)
        access.policy.invalidate()
        access.audit(me, "grant", obj, "ok", detail=f"{body.privilege} to {body.principal}")
        return {"principal": body.principal, "privilege": body.privilege, "object": obj, "new": new}

    @api.delete("/api/v1/grants", tags=["access"])
    def revoke(request: Request, principal: str, privilege: str, object: str) -> Any:
        me = who(request)
        obj = acl.check_object(object)
        access.check(me, "manage", obj, audit_as="revoke")
        with catalog.writing() as s:
            done = acl.revoke(s, principal, privilege, obj)
        access.policy.invalidate()
        access.audit(me, "revoke", obj, "ok", detail=f"{privilege} from {principal}")
        return {"principal": principal, "privilege": privilege, "object": obj, "revoked": done}

    @api.post("/api/v1/tokens", tags=["access"], status_code=201)
    def create_token(request: Request, body: TokenRequest) -> Any:
        """A token for oneself, or for anyone with manage on the lake; its text is in this answer only."""
        me = who(request)
        if body.principal != me:
            access.check(me, "manage", "lake", audit_as="token.create")
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=body.expires_in_seconds)
                   if body.expires_in_seconds else None)
        info, text = catalog.create_token(body.principal, expires_at=expires, description=body.description,
                                          created_by=me or whoami())
        access.audit(me, "token.create", "lake", "ok", detail=f"token {info.id} for {info.principal}")
        return {**info.as_dict(), "token": text}

    @api.delete("/api/v1/tokens/{token_id}", tags=["access"])
    def revoke_token(request: Request, token_id: str) -> Any:
        me = who(request)
        mine = any(t.id == token_id for t in catalog.tokens(principal=me)) if me else False
        if not mine:
            access.check(me, "manage", "lake", audit_as="token.revoke")
        info = catalog.revoke_token(token_id)
        access.audit(me, "token.revoke", "lake", "ok", detail=f"token {info.id} of {info.principal}")
        return info.as_dict()

    @api.get("/api/v1/audit", tags=["access"])
    def audit(request: Request, principal: str | None = None, object: str | None = None,
              since: dt.datetime | None = None, action: str | None = None, outcome: str | None = None,
              limit: int = Query(default=100, ge=1, le=10_000)) -> Any:
        """The audit trail (manage on the object asked about, or on the lake)."""
        access.check(who(request), "manage", acl.check_object(object) if object else "lake", audit_as="audit")
        access.audit_log.flush()
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        with catalog.reading() as s:
            return acl.audit_records(s, principal=principal, obj=object, since=since, action=action,
                                     outcome=outcome, limit=limit)

    # ------------------------------------------------------------------ raw ASGI parts

    async def lineage_in(scope: Scope, receive: Receive, send: Send) -> None:
        """OpenLineage events (Marquez's endpoint): write on every output dataset named in the lake's namespace,
        write on the lake for anything else."""
        principal = scope.get(PRINCIPAL_KEY)
        me = principal.name if principal is not None else None
        try:
            payload = decode_json(await read_body(receive, limits.max_body_bytes), limits)
            events = payload if isinstance(payload, list) else [payload]
            if not events:
                raise RequestError(422, "an empty list of events: send one OpenLineage RunEvent or a list of them")
            for obj in sorted(_outputs(events, namespace)):
                await asyncio.to_thread(access.check, me, "write", obj, audit_as="lineage")
            runs = await asyncio.to_thread(ingest_batch, catalog, events)
        except CatalogError as exc:
            return await respond(send, status_of(exc), {"detail": exc.message})
        access.policy.invalidate()
        await respond(send, 201, {"ingested": len(runs), "runs": runs})

    async def health(send: Send) -> None:
        try:
            await asyncio.to_thread(catalog.ping)
        except CatalogError as exc:
            return await respond(send, 503, {"status": "unavailable", "detail": exc.message})
        await respond(send, 200, {"status": "ok"})

    measured = lake.settings.metrics
    tally = metrics.Tally()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/api/v1/lineage" and method == "POST":
                return await lineage_in(scope, receive, send)
            if path == "/health" and method == "GET":
                return await health(send)
            if path == "/metrics" and method == "GET" and measured.enabled:
                return await tally.answer(send)
        await api(scope, receive, send)

    guarded = Guard(app, access.authenticator, limits,
                    public=("/health", "/metrics") if measured.public else ("/health",))
    # Latency and status per endpoint (path parameters folded into their route's prefix).
    endpoints = {r.path.split("/{")[0] for r in api.routes if hasattr(r, "path")}
    endpoints |= {"/api/v1/lineage", "/health", "/metrics", "/get-online-features", *(mounts or {})}

    def measure(whole: Any) -> Any:
        return metrics.HttpMetrics(whole, "service", endpoints, tally, prefixes=True) if measured.enabled else whole

    if features is None and not mounts:
        return measure(guarded)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if features is not None and scope["type"] == "http" and scope["path"] == "/get-online-features":
            return await features(scope, receive, send)  # its own guard, the same authenticator
        await guarded(scope, receive, send)

    if not mounts:
        return measure(dispatch)
    return measure(Starlette(routes=[*(Mount(prefix, app=sub) for prefix, sub in mounts.items()),
                                     Mount("/", app=dispatch)]))


def _names_any(node: str, names: set[str]) -> bool:
    """Whether a lineage node id (``name``, ``name.column``, ``name@v``) is one of ``names``'."""
    return any(node == n or node.startswith((n + ".", n + "@")) for n in names)


def _outputs(events: list[Any], namespace: str) -> set[str]:
    """The objects an OpenLineage batch writes: lake datasets by name, ``lake`` for anything else."""
    out: set[str] = set()
    for event in events:
        outputs = event.get("outputs") if isinstance(event, dict) else None
        for ds in outputs if isinstance(outputs, list) else []:
            if not isinstance(ds, dict):
                continue
            name = str(ds.get("name", ""))
            if ds.get("namespace") == namespace:
                try:
                    out.add(object_of(acl.check_object(name)))
                    continue
                except CatalogError:
                    pass
            out.add("lake")
    return out


class _QueryPolicy:
    """What a query through the service may read, for :class:`lake.sql.LakeSQL`."""

    def __init__(self, access: ServiceAccess, principal: str | None) -> None:
        self.access, self.principal = access, principal
        self.salt = access.salt
        self.read: list[str] = []

    def table(self, name: str) -> dict[str, str]:
        self.access.check(self.principal, "read", object_of(name), audit_as="sql")
        self.read.append(name)
        return self.access.masks(self.principal, dataset_of(object_of(name)))


__all__ = ["ARROW_STREAM", "create_app", "rows_of"]
