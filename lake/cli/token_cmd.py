"""``lake token``: API tokens for ``lake catalog serve`` and ``lake features serve``.

Once any active token exists, both servers require ``Authorization: Bearer <token>``; with none,
they listen on loopback only. A token's text is printed once, at creation: the catalog keeps
only its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import typer

from lake.cli.context import state
from lake.cli.output import console, err_console, print_json, print_table
from lake.errors import LakeError

app = typer.Typer(help="Create, list and revoke API tokens for the HTTP servers.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO 8601 date or date-time (UTC if no offset).

    Raises:
        LakeError: neither form.
    """
    now = now or dt.datetime.now(dt.UTC)
    match = _DURATION.match(text)
    if match:
        return now + dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise LakeError(f"--expires {text!r}: give a duration (30d, 12h, 90m, 2w) or a date (2027-01-31)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``1h``, ``7d`` ago, or an ISO 8601 date or date-time (UTC if no offset).

    Raises:
        LakeError: neither form.
    """
    now = now or dt.datetime.now(dt.UTC)
    match = _DURATION.match(text)
    if match:
        return now - dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise LakeError(f"--since {text!r}: give a duration (1h, 7d, 30m) or a date (2027-01-31)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@app.command("create")
def create(
    ctx: typer.Context,
    principal: Annotated[str, typer.Option("--principal", "-p", help="Who the token is for: a user or a "
                                           "service account (alice, svc:training).")],
    expires: Annotated[str | None, typer.Option(help="Expiry: a duration (30d, 12h) or a date; default never.")]
    = None,
    description: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it, once (only its hash is stored)."""
    expires_at = parse_expiry(expires) if expires else None
    info, token = state(ctx).lake(catalog_only=True).catalog.create_token(principal, expires_at=expires_at, description=description)
    if as_json:
        print_json({**info.as_dict(), "token": token})
        return
    console.print(token, markup=False, highlight=False, soft_wrap=True)
    err_console.print(f"token {info.id} for {info.principal}"
                      + (f", expires {info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at else "")
                      + ". Keep it now: it is not shown again. Clients send `Authorization: Bearer <token>`.",
                      markup=False, highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option("--principal", "-p", help="Only this principal's.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only tokens neither revoked nor expired.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (never their text): id, principal, status, when created, expiring, last used."""
    rows: list[dict[str, Any]] = [t.as_dict() for t in state(ctx).lake(catalog_only=True).catalog.tokens(
        principal=principal, include_inactive=not active)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no tokens: the servers need none and listen on loopback only")
        return
    print_table(rows, ["id", "principal", "status", "created_at", "expires_at", "last_used_at", "created_by",
                       "description"])


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (`lake token list`).")],
) -> None:
    """Revoke a token; running servers refuse it within [server] token_cache_seconds."""
    info = state(ctx).lake(catalog_only=True).catalog.revoke_token(token_id)
    console.print(f"token {info.id} of {info.principal}: revoked", markup=False, highlight=False)
