"""``lake principal``, ``lake grant|revoke|grants``, ``lake mask``, ``lake audit``: who may do what.

These commands write the catalog database directly: whoever can run them against it is its
administrator (embedded mode). What they decide is enforced by ``lake serve`` (every
endpoint), the feature server (per feature service) and the job runner (see SECURITY.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from catalog import access
from catalog.tokens import whoami
from lake.cli.context import state
from lake.cli.output import console, print_json, print_table
from lake.cli.token_cmd import parse_since

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

principal_app = typer.Typer(help="Users, service accounts and groups (what grants are given to).",
                            no_args_is_help=True)


@principal_app.command("create")
def principal_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="alice, svc:training, team-ml...")],
    kind: Annotated[str, typer.Option("--kind", "-k", help="user, service or group.")] = "user",
    description: Annotated[str | None, typer.Option(help="Who or what it is.")] = None,
) -> None:
    """Define a principal. Once one exists, the service serves nobody anonymously."""
    with state(ctx).lake().catalog.writing() as s:
        row = access.create_principal(s, name, kind, description=description, created_by=whoami())
    console.print(f"{row['kind']} {row['name']}: created", markup=False, highlight=False)


@principal_app.command("list")
def principal_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Principals with their kind and the groups they belong to."""
    with state(ctx).lake().catalog.reading() as s:
        rows = access.principals(s)
    if as_json:
        print_json(rows)
        return
    print_table([{**r, "groups": ", ".join(r["groups"])} for r in rows],
                ["name", "kind", "groups", "description", "created_at"])


@principal_app.command("delete")
def principal_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a principal with its grants and memberships; its tokens are revoked."""
    with state(ctx).lake().catalog.writing() as s:
        access.delete_principal(s, name)
    console.print(f"{name}: deleted (grants removed, tokens revoked)", markup=False, highlight=False)


@principal_app.command("add-member")
def add_member(ctx: typer.Context, group: Annotated[str, typer.Argument()],
               member: Annotated[str, typer.Argument()]) -> None:
    """Put a principal in a group (it then holds the group's grants)."""
    with state(ctx).lake().catalog.writing() as s:
        access.add_member(s, group, member)
    console.print(f"{member} is in {group}", markup=False, highlight=False)


@principal_app.command("remove-member")
def remove_member(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                  member: Annotated[str, typer.Argument()]) -> None:
    """Take a principal out of a group."""
    with state(ctx).lake().catalog.writing() as s:
        done = access.remove_member(s, group, member)
    console.print(f"{member} {'removed from' if done else 'was not in'} {group}", markup=False, highlight=False)


PrivilegeArg = Annotated[str, typer.Argument(help="read, write, manage or unmask.")]
ObjectArg = Annotated[str, typer.Argument(
    metavar="OBJECT", help="lake, a layer (bronze), a dataset (bronze.trades), feature_view:NAME, feature_service:NAME.")]


def grant(
    ctx: typer.Context,
    privilege: PrivilegeArg,
    obj: ObjectArg,
    to: Annotated[str, typer.Option("--to", help="The principal (a user, service account or group).")],
) -> None:
    """Grant a privilege on an object and everything below it (manage > write > read; unmask apart)."""
    with state(ctx).lake().catalog.writing() as s:
        new = access.grant(s, to, privilege, obj, granted_by=whoami())
    console.print(f"{to}: {privilege} on {obj}" + ("" if new else " (held already)"), markup=False, highlight=False)


def revoke(
    ctx: typer.Context,
    privilege: PrivilegeArg,
    obj: ObjectArg,
    from_: Annotated[str, typer.Option("--from", help="The principal.")],
) -> None:
    """Take back exactly that grant (a grant on an object above still applies)."""
    with state(ctx).lake().catalog.writing() as s:
        done = access.revoke(s, from_, privilege, obj)
    console.print(f"{from_}: {privilege} on {obj} " + ("revoked" if done else "was not granted"), markup=False,
                  highlight=False)


def grants(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option("--principal", "-p", help="Only this principal's.")] = None,
    obj: Annotated[str | None, typer.Option("--object", "-o", help="What applies to this object (grants above "
                                            "it included).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants as given."""
    with state(ctx).lake().catalog.reading() as s:
        rows = access.grants(s, principal=principal, obj=obj)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["principal", "privilege", "object", "granted_by", "granted_at"])


mask_app = typer.Typer(help="Masking policies per tag: how a tagged column leaves the service for a principal "
                       "without unmask.", no_args_is_help=True)


@mask_app.command("set")
def mask_set(ctx: typer.Context, tag: Annotated[str, typer.Argument(help="pii, card...")],
             method: Annotated[str, typer.Argument(help="null, hash (salted HMAC) or last4.")]) -> None:
    """Columns carrying TAG (directly, by column lineage, or by name downstream) are masked by METHOD."""
    with state(ctx).lake().catalog.writing() as s:
        access.set_mask(s, tag, method)
    console.print(f"{tag}: masked by {method}", markup=False, highlight=False)


@mask_app.command("drop")
def mask_drop(ctx: typer.Context, tag: Annotated[str, typer.Argument()]) -> None:
    """Remove the masking policy of a tag."""
    with state(ctx).lake().catalog.writing() as s:
        done = access.drop_mask(s, tag)
    console.print(f"{tag}: " + ("policy dropped" if done else "had no policy"), markup=False, highlight=False)


@mask_app.command("list")
def mask_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Masking policies."""
    with state(ctx).lake().catalog.reading() as s:
        rows = [{"tag": t, "method": m} for t, m in sorted(access.masks(s).items())]
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["tag", "method"])


def audit(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option("--principal", "-p", help="Only this principal's requests.")]
    = None,
    obj: Annotated[str | None, typer.Option("--object", "-o", help="Only this object and what is below it.")]
    = None,
    since: Annotated[str | None, typer.Option(help="Since a duration ago (1h, 7d) or a date.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (read, write, grant, token, sql...).")]
    = None,
    outcome: Annotated[str | None, typer.Option(help="allowed, denied or error.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail of the service: who did what to which object, when, and how it ended."""
    when = parse_since(since) if since else None
    with state(ctx).lake().catalog.reading() as s:
        rows: list[dict[str, Any]] = access.audit_records(s, principal=principal, obj=obj, since=when, action=action,
                                                          outcome=outcome, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["at", "principal", "action", "object", "version", "outcome", "detail"])
