"""What every console page shares: the access guard, rendering, security headers, argument checks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from catalog.errors import CatalogConnectionError
from lake.console import views
from lake.console.access import Access
from lake.errors import ConsoleError, LakeError
from lake.lakehouse import Lake

HERE = Path(__file__).parent
MAX_BODY = 256 * 1024
"""Bytes a console request body may carry (edits, sign-in, saved queries)."""
MAX_COLUMNS = 5_000
"""Column descriptions one edit may set."""
SECURITY_HEADERS = {
    # Every script and style is a file of the package: no inline code runs, nothing from elsewhere loads.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class Guard:
    """The access questions of one request, asked of the host's :class:`Access`."""

    def __init__(self, access: Access, request: Request) -> None:
        self.access = access
        headers: Mapping[str, str] = request.headers
        self.principal = access.principal(headers, request.cookies)

    def signed_in(self) -> str:
        """The principal; 401 when nobody signed in (asked before looking anything up: no existence leaks)."""
        if self.principal is None:
            raise ConsoleError(401, "sign in first: this console needs a token")
        return self.principal

    def require(self, action: str, obj: str) -> str:
        """The principal, when they may do ``action`` on ``obj``; else 401 (not signed in) or 403."""
        if self.principal is None:
            raise ConsoleError(401, "sign in first: this console needs a token")
        if not self.access.can(self.principal, action, obj):
            self.access.audit(self.principal, action, obj, "denied")
            raise ConsoleError(403, f"{self.principal} may not {action} {obj}")
        return self.principal

    def can(self, action: str, obj: str) -> bool:
        return self.principal is not None and self.access.can(self.principal, action, obj)


@dataclass
class Console:
    """One console: the lake it shows, who may see what, its templates."""

    lake: Lake
    access: Access
    templates: Jinja2Templates

    def guard(self, request: Request) -> Guard:
        return Guard(self.access, request)

    def render(self, request: Request, guard: Guard, template: str, http_status: int = 200,
               **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request, template, {"principal": guard.principal, "guard": guard, "base": base_of(request), **context},
            status_code=http_status)


def _default(value: Any) -> Any:
    return views.jsonable(value)


class Json(JSONResponse):
    """JSON straight from ``json.dumps`` (FastAPI's own encoder walks every value first: slow on big graphs);
    dates and other non-JSON values through :func:`lake.console.views.jsonable`."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, default=_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:  # a NaN or an infinity somewhere: JSON has none, browsers refuse them
            text = json.dumps(views.jsonable(content), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["tojson_attr"] = lambda v: json.dumps(views.jsonable(v))
    templates.env.filters["human_bytes"] = human_bytes
    templates.env.filters["when"] = when
    templates.env.filters["access_object"] = views.access_object
    return templates


def base_of(request: Request) -> str:
    """Where the console is mounted (``/ui`` under ``lake serve``; empty for ``lake ui``): every link starts with it."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def status_of(exc: LakeError) -> int:
    """The HTTP status of an error: 401/403/413 as the console said, 404 unknown, 503 catalog down, else 400."""
    if isinstance(exc, ConsoleError):
        return exc.status
    if isinstance(exc, CatalogConnectionError):
        return 503
    if isinstance(exc, LookupError):
        return 404
    return 400


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//evil`` or ``https://evil``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class SecurityHeaders(BaseHTTPMiddleware):
    """Refuse bodies over :data:`MAX_BODY` up front; add the security headers to every answer."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("cache-control", "no-store")
        return response


async def body_bytes(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ConsoleError(413, f"request body over {MAX_BODY} bytes")
    return raw


async def body_json(request: Request) -> dict[str, Any]:
    """The request's JSON object (400 when it is not one, 413 when too large)."""
    raw = await body_bytes(request)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ConsoleError(400, "the request body is not JSON") from exc
    try:  # JSON may escape a lone surrogate (\ud800), which no database or page can take
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConsoleError(400, "the request body holds text that is not Unicode (a lone surrogate escape such "
                                "as \\ud800)") from exc
    if not isinstance(data, dict):
        raise ConsoleError(400, "the request body must be a JSON object")
    return data


def version_arg(value: str | None, what: str = "version") -> int | None:
    """A version number from a query parameter (None when absent); 400 for anything else."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 9:
        raise ConsoleError(400, f"{what} must be a version number, not {value[:20]!r}")
    return int(value)


def int_arg(value: str | None, what: str, default: int, low: int, high: int) -> int:
    """A bounded integer from a query parameter; 400 when it is not one or out of bounds."""
    if value is None or value == "":
        return default
    if not value.lstrip("-").isdigit() or len(value) > 9 or not low <= int(value) <= high:
        raise ConsoleError(400, f"{what} must be a whole number from {low} to {high}, not {value[:20]!r}")
    return int(value)


def human_bytes(n: Any) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def when(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def check_annotations(data: dict[str, Any]) -> dict[str, Any]:
    """Edits of a dataset page, checked: a description, lists of owners/tags to add or remove."""
    allowed = {"description", "column_descriptions", "add_owners", "remove_owners", "add_tags", "remove_tags"}
    unknown = set(data) - allowed
    if unknown:
        raise ConsoleError(400, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    out: dict[str, Any] = {}
    if "description" in data:
        if not isinstance(data["description"], str) or len(data["description"]) > 20_000:
            raise ConsoleError(400, "description must be text of at most 20,000 characters")
        out["description"] = data["description"]
    cols = data.get("column_descriptions") or {}
    if not isinstance(cols, dict) or len(cols) > MAX_COLUMNS or not all(
            isinstance(k, str) and 0 < len(k) <= 512 and isinstance(v, str) and len(v) <= 20_000
            for k, v in cols.items()):
        raise ConsoleError(400, f"column_descriptions must map at most {MAX_COLUMNS:,} column names to text of "
                                "at most 20,000 characters each")
    out["column_descriptions"] = cols
    for key in ("add_owners", "remove_owners", "add_tags", "remove_tags"):
        values = data.get(key) or []
        if not isinstance(values, list) or len(values) > 100 or not all(
                isinstance(v, str) and 0 < len(v.strip()) <= 128 for v in values):
            raise ConsoleError(400, f"{key} must be a list of at most 100 names of 1-128 characters")
        out[key] = [v.strip() for v in values]
    return out
