"""The console as an ASGI app: pages (Jinja2) and the JSON endpoints their JavaScript calls.

Every request first asks the :class:`~lake.console.access.Access` who is calling (no one: the
sign-in page, or 401 for JSON), then whether they may ``read``/``write`` the object; samples go
through its masking. A user's mistake is a 4xx with a one-line reason, never a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from lake.console import features, lineage, monitoring, operations, saved, views
from lake.console.access import TOKEN_COOKIE, Access, OpenAccess
from lake.console.web import (
    HERE,
    Console,
    Json,
    SecurityHeaders,
    base_of,
    body_bytes,
    body_json,
    check_annotations,
    int_arg,
    make_templates,
    safe_next,
    status_of,
    version_arg,
    wants_json,
)
from lake.errors import ConsoleError, LakeError
from lake.lakehouse import Lake

__all__ = ["create_app"]


def create_app(lake: Lake, access: Access | None = None) -> FastAPI:
    """The console for ``lake``, asking ``access`` about every request.

    Args:
        lake: the lake (and its catalog) to show.
        access: who may see and do what; default :class:`~lake.console.access.OpenAccess`
            (everything, for ``lake ui`` on loopback).
    """
    console = Console(lake, access or OpenAccess(), make_templates())
    app = FastAPI(title="lake console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.console = console

    @app.exception_handler(LakeError)
    async def _lake_error(request: Request, exc: LakeError) -> Response:
        status = status_of(exc)
        if wants_json(request):
            return JSONResponse({"detail": exc.message}, status_code=status)
        if status == 401:
            return RedirectResponse(base_of(request) + "/signin?next=" + quote(safe_next(request.url.path), safe="/"),
                                    status_code=303)
        return console.render(request, console.guard(request), "error.html", http_status=status, code=status,
                              message=exc.message)

    _signin_routes(app, console)
    _search_routes(app, console)
    _dataset_routes(app, console)
    lineage.add_routes(app, console)
    operations.add_routes(app, console)
    features.add_routes(app, console)
    monitoring.add_routes(app, console)
    saved.add_routes(app, console)
    return app


def _signin_routes(app: FastAPI, console: Console) -> None:
    access = console.access

    @app.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, next: str = "") -> HTMLResponse:
        target = safe_next(next) if next else base_of(request) + "/"
        return console.render(request, console.guard(request), "signin.html", next=target, error=None)

    @app.post("/signin")
    async def signin(request: Request) -> Response:
        form = parse_qs((await body_bytes(request)).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        target = safe_next((form.get("next") or [base_of(request) + "/"])[0])
        who = await run_in_threadpool(access.principal, {}, {TOKEN_COOKIE: token}) if token else None
        if who is None:
            access.audit(None, "signin", "lake", "denied")
            return console.render(request, console.guard(request), "signin.html", http_status=401, next=target,
                                  error="That token is not valid (unknown, revoked or expired).")
        access.audit(who, "signin", "lake", "signed-in")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        response = RedirectResponse(base_of(request) + "/signin", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response


def _search_routes(app: FastAPI, console: Console) -> None:
    lake = console.lake

    def filters_of(request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "")[:200] for k in ("layer", "tag", "owner", "quality", "kind")}

    def visible(request: Request, q: str, limit: int) -> dict[str, Any]:
        guard = console.guard(request)
        guard.require("read", "lake")
        found = views.search(lake, q[:500], filters_of(request), limit=limit)
        found["hits"] = [h for h in found["hits"] if guard.can("read", views.access_object(h["name"], h["kind"]))]
        return found

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, q: str = "") -> HTMLResponse:
        found = visible(request, q, 20)
        return console.render(request, console.guard(request), "search.html", found=found, q=q,
                              filters=filters_of(request), counts=lake.catalog.counts())

    @app.get("/api/search")
    def api_search(request: Request, q: str = "", limit: str | None = None) -> Any:
        return Json(visible(request, q, int_arg(limit, "limit", 20, 1, 100)))


def _dataset_routes(app: FastAPI, console: Console) -> None:
    lake, access = console.lake, console.access

    def readable(request: Request, name: str, version: int | None) -> dict[str, Any]:
        console.guard(request).require("read", views.access_object(name))
        return views.dataset(lake, name, version, request.query_params.get("ns") or None)

    @app.get("/datasets/{name:path}", response_class=HTMLResponse)
    def dataset_page(request: Request, name: str, version: str | None = None) -> HTMLResponse:
        guard = console.guard(request)
        shown = readable(request, name, version_arg(version))
        can_write = guard.can("write", views.access_object(name))
        # column descriptions belong to the current columns: edited on the current version's page
        return console.render(request, guard, "dataset.html", ds=shown, sheet=views.datasheet(lake, shown),
                              can_write=can_write, edit_columns=can_write and version is None and bool(shown["schema"]))

    @app.get("/api/datasets/{name:path}/sample")
    def api_sample(request: Request, name: str, version: str | None = None, limit: str | None = None) -> Any:
        who = console.guard(request).require("read", views.access_object(name))
        data = views.sample(lake, name, version_arg(version), int_arg(limit, "limit", 20, 1, views.SAMPLE_ROWS))
        masked = access.mask(who, name, data)
        access.audit(who, "read", name, "sample")
        return Json(views.rows_of(masked))

    @app.get("/api/datasets/{name:path}/diff")
    def api_diff(request: Request, name: str, a: str = "", b: str = "") -> Any:
        console.guard(request).require("read", views.access_object(name))
        va, vb = version_arg(a, "a"), version_arg(b, "b")
        if va is None or vb is None:
            raise ConsoleError(400, "give two versions: ?a=<version>&b=<version>")
        return Json(views.schema_diff(lake, name, va, vb))

    @app.post("/api/datasets/{name:path}/annotations")
    async def api_annotate(request: Request, name: str) -> Any:
        who = console.guard(request).require("write", views.access_object(name))
        changes = check_annotations(await body_json(request))

        def apply() -> dict[str, Any]:
            current = lake.catalog.show(name)  # 404 for an unknown dataset before anything is written
            views.check_columns(current, changes["column_descriptions"])  # 400 for an unknown column, likewise
            views.annotate(lake, name, changes)
            access.audit(who, "write", name, "annotated")
            return views.dataset(lake, name)

        return Json(await run_in_threadpool(apply))

    @app.post("/api/datasets/{name:path}/datasheet")
    async def api_datasheet(request: Request, name: str) -> Any:
        who = console.guard(request).require("write", views.access_object(name))
        notes = await body_json(request)

        def save() -> dict[str, str]:
            lake.catalog.show(name)
            saved = views.save_datasheet(lake, name, notes, who)
            access.audit(who, "write", name, "datasheet")
            return saved

        return Json({"notes": await run_in_threadpool(save)})

    # Last: a name may hold "/" (external datasets), so the suffixed routes above match first.
    @app.get("/api/datasets/{name:path}")
    def api_dataset(request: Request, name: str, version: str | None = None) -> Any:
        return Json(readable(request, name, version_arg(version)))
