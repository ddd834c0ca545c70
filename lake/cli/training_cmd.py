"""``lake training``: saved training datasets: list, show the recipe, export a snapshot, reproduce."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lake.cli.context import state
from lake.cli.output import console, human_bytes, print_json, print_table

app = typer.Typer(help="Training datasets: list, show, export with provenance, reproduce.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _sources(sources: dict[str, Any]) -> list[str]:
    return [f"{name}@{s.get('version') if isinstance(s, dict) else s}" for name, s in sorted(sources.items())]


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only the saved versions of this name.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Saved training datasets, newest first."""
    rows = state(ctx).lake().catalog.training_datasets(name=name, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no training datasets saved yet" + (f" named {name}" if name else ""))
        return
    print_table([{"id": r["id"], "name": r["name"], "version": r["version"], "rows": r["row_count"],
                  "features": len(r["features"]), "sources": _sources(r["sources"]),
                  "created_at": r["created_at"]} for r in rows],
                ["id", "name", "version", "rows", "features", "sources", "created_at"])


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Id, unique id prefix (6+ characters) or name (the newest).")],
    version: Annotated[int | None, typer.Option(help="With a name: the saved dataset at this table version.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The recipe of a training dataset: features, sources with versions, hashes, rows, columns."""
    # heavy: lake.handoff (Delta, DuckDB, pandas) is imported only when the command runs
    from lake.handoff.load import catalog_facts, find_training
    from lake.naming import training_table

    lake = state(ctx).lake()
    recipe = find_training(lake, ref, version)
    quality = None
    if recipe["version"] is not None:
        quality = catalog_facts(lake, training_table(recipe['name']), int(recipe["version"]))["quality_status"]
    if as_json:
        print_json({**recipe, "table": training_table(recipe['name']), "quality_status": quality})
        return
    console.print(f"[bold]{recipe['name']}[/]  id {recipe['id']}  (table training.{recipe['name']} "
                  f"version {recipe['version']})", highlight=False)
    console.print(f"rows: {recipe['row_count']}   created: {recipe['created_at']:%Y-%m-%d %H:%M:%S}   "
                  f"run: {recipe['run_id'] or '-'}   quality: {quality or 'not validated'}", highlight=False)
    console.print(f"content hash: {recipe['content_hash']}", highlight=False)
    console.print(f"entity hash:  {recipe['entity_hash']}   entities: {recipe['entity_location'] or '-'}",
                  highlight=False)
    if recipe["feature_service"]:
        console.print(f"feature service: {recipe['feature_service']}")
    print_table([{"feature": f} for f in recipe["features"]], ["feature"], title="features")
    print_table([{"table": t, **(s if isinstance(s, dict) else {"version": s})}
                 for t, s in sorted(recipe["sources"].items())], ["table", "version"], title="sources")
    if recipe["columns"]:
        print_table(recipe["columns"], [k for k in ("name", "type", "nullable") if k in recipe["columns"][0]],
                    title="columns")
    if recipe["options"]:
        console.print(f"options: {recipe['options']}", highlight=False)


@app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A training dataset (id, prefix, name) or a table such as gold.x.")],
    out: Annotated[str, typer.Option("--out", help="Folder or s3://bucket/prefix to write into.")],
    version: Annotated[int | None, typer.Option(help="The version (default: saved / latest).")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="Split by key, e.g. train=0.8,validation=0.1,test=0.1 (needs --key).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Key column(s) of the split, comma-separated.")] = None,
    salt: Annotated[str, typer.Option(help="Text mixed into the split hash (another stable split).")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in --out.")] = False,
    rows_per_file: Annotated[int, typer.Option(help="Rows per Parquet file.")] = 1_048_576,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Export a snapshot to Parquet plus manifest.json (provenance, schema, split, file checksums)."""
    # heavy: lake.handoff (Delta, DuckDB, pandas) is imported only when the command runs
    from lake.cli.progress import Bars
    from lake.errors import SplitError
    from lake.handoff.export import export as run_export
    from lake.handoff.stream import SplitSpec

    if key and not split:
        raise SplitError("--key needs --split, e.g. --split train=0.8,validation=0.1,test=0.1")
    spec = SplitSpec.parse(split, keys=key or "", salt=salt) if split else None
    with Bars("export", enabled=not as_json) as bars:  # stderr, on a terminal only: rows and files written
        result = run_export(state(ctx).lake(), ref, out, version=version, splits=spec, overwrite=overwrite,
                            rows_per_file=rows_per_file,
                            progress=lambda rows, total, files: bars.update(
                                message=f"{files} file(s)", rows=rows, total_rows=total or None))
    if as_json:
        print_json(result.manifest)
        return
    d = result.manifest["dataset"]
    print_table([{"path": f.path, "rows": f.rows, "size": human_bytes(f.bytes), "sha256": f.sha256[:16]}
                 for f in result.files], ["path", "rows", "size", "sha256"], title=result.location)
    split_rows = (result.manifest.get("split") or {}).get("rows")
    console.print(f"exported {d['table']}@{d['version']}: {result.row_count} rows in {len(result.files)} files"
                  + (f" ({', '.join(f'{k} {v}' for k, v in split_rows.items())})" if split_rows else ""),
                  highlight=False)
    console.print(f"manifest: {result.manifest_uri}   run: {result.run_id or '-'}", highlight=False)


@app.command("reproduce")
def reproduce(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Id, unique id prefix or name of a saved training dataset.")],
    engine: Annotated[str | None, typer.Option(
        help="duckdb, spark or auto (default: [features] engine); either gives the same hash.")] = None,
    as_json: JsonOpt = False,
) -> int:
    """Rebuild a training dataset from its recipe and compare hashes. Exit status 1 if they differ."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.training import reproduce as rebuild

    result = rebuild(state(ctx).lake(), ref, engine=engine)  # type: ignore[arg-type]
    fields = ("id", "name", "matches", "expected_hash", "actual_hash", "rows", "sources", "stored_matches")
    data = {f: getattr(result, f) for f in fields if hasattr(result, f)}  # not the rebuilt frame itself
    if as_json:
        print_json(data)
    else:
        console.print(f"training dataset {data.get('id')}: "
                      + ("[green]reproduced[/], same content" if data.get("matches") else "[red]differs[/]"))
        console.print(f"expected hash: {data.get('expected_hash')}\nactual hash:   {data.get('actual_hash')}\n"
                      f"rows: {data.get('rows')}", highlight=False)
        if data.get("stored_matches") is not None:
            console.print(f"stored frame: {'same hash' if data['stored_matches'] else 'differs from the recipe'}")
        sources = data.get("sources")
        if isinstance(sources, dict) and sources:
            console.print(f"sources: {', '.join(_sources(sources))}", highlight=False)
    return 0 if data.get("matches") else 1
