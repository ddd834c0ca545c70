"""``lake table``: list, inspect and maintain Delta tables."""

from __future__ import annotations

from typing import Annotated

import typer

from lake.cli.context import state
from lake.cli.output import console, human_bytes, print_json, print_table

app = typer.Typer(help="List, inspect and maintain Delta tables.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("ls")
def ls(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the tables under the lake root."""
    lake = state(ctx).lake()
    rows = []
    for ref in lake.tables():
        d = lake.table(ref.name).details()
        rows.append({"name": ref.name, "version": d["version"], "rows": d["rows"], "files": d["files"],
                     "size": d["size_bytes"], "partitioned_by": d["partition_columns"], "location": ref.uri})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["size"] = human_bytes(row["size"])
    if not rows:
        console.print(f"no tables under {lake.storage.root}")
        return
    print_table(rows, ["name", "version", "rows", "files", "size", "partitioned_by", "location"])


@app.command("show")
def show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Schema, version, files and size of a table."""
    from lake.schema import DELTA_TIMESTAMPS

    table = state(ctx).lake().existing(name)
    d = table.details()
    # Delta's own type names: `timestamp` (an instant, UTC) and `timestamp_ntz` (no time zone) differ
    # where Arrow's text is easy to misread, and a write of the other kind is treated differently.
    delta_types = {}
    for f in table.delta().schema().fields:
        kind = getattr(f.type, "type", None)  # a primitive's name (long, string, timestamp...)
        kind = kind if isinstance(kind, str) else type(f.type).__name__.removesuffix("Type").lower()
        delta_types[f.name] = DELTA_TIMESTAMPS.get(kind, kind)
    for column in d["schema"]:
        column["delta_type"] = delta_types.get(column["name"], column["type"])
    if as_json:
        print_json(d)
        return
    console.print(f"[bold]{d['name']}[/]  version {d['version']}  {d['rows']} rows in {d['files']} files, "
                  f"{human_bytes(d['size_bytes'])}")
    console.print(f"location: {d['location']}")
    if d["partition_columns"]:
        console.print(f"partitioned by: {', '.join(d['partition_columns'])}")
    if d["description"]:
        console.print(d["description"])
    print_table(d["schema"], ["name", "type", "delta_type", "nullable"], title="schema")


@app.command("history")
def history(
    ctx: typer.Context,
    name: str,
    limit: Annotated[int | None, typer.Option(help="Newest N commits only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Commits of a table, newest first, with their operation metrics."""
    rows = state(ctx).lake().existing(name).history(limit)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["version", "timestamp", "operation", "metrics"], title=f"history of {name}")


@app.command("optimize")
def optimize(
    ctx: typer.Context,
    name: str,
    zorder: Annotated[list[str] | None, typer.Option("--zorder", help="Z-order by this column (repeat).")] = None,
    target_size: Annotated[int | None, typer.Option(help="Target file size in bytes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compact small files into larger ones (data unchanged, a new version)."""
    result = state(ctx).lake().existing(name).optimize(target_size=target_size, zorder=zorder)
    if as_json:
        print_json(result.as_dict())
    elif result.skipped:
        console.print(f"{name}: nothing to compact (version {result.version})")
    else:
        console.print(f"{name}: version {result.version}, {result.metrics.get('files_removed', 0)} files "
                      f"compacted into {result.metrics.get('files_added', 0)}")


@app.command("vacuum")
def vacuum(
    ctx: typer.Context,
    name: str,
    retention_hours: Annotated[float | None, typer.Option(help="Keep files younger versions need (default 168).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Allow a retention under 168 hours.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete files no retained version needs, and leftovers of crashed writes."""
    removed = state(ctx).lake().existing(name).vacuum(retention_hours=retention_hours, dry_run=dry_run, force=force)
    if as_json:
        print_json({"table": name, "dry_run": dry_run, "files": removed})
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{name}: {verb} {len(removed)} files")
    for path in removed[:20]:
        console.print(f"  {path}")
    if len(removed) > 20:
        console.print(f"  ... and {len(removed) - 20} more")
