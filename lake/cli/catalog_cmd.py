"""``lake catalog``: search, inspect and annotate datasets; lineage; runs; OpenLineage in."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from catalog.redact import redact_text
from lake.cli.context import state
from lake.cli.output import console, err_console, human_bytes, print_json, print_table
from lake.errors import LakeError

app = typer.Typer(help="Search and annotate datasets, follow lineage, list runs.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NsOpt = Annotated[str | None, typer.Option("--namespace", help="Dataset namespace (default: the lake's).")]


def _catalog(ctx: typer.Context, write: bool = False) -> Any:
    settings = state(ctx).settings()
    if settings.service.url:  # search, show and lineage through a running `lake serve`
        # deferred: the HTTP client loads only when used
        from lake.remote import RemoteCatalog

        return RemoteCatalog.from_settings(settings)
    return state(ctx).lake(write=write, catalog_only=True).catalog


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to find (partial words and typos are fine).")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only datasets with this tag (repeat).")] = None,
    owner: Annotated[str | None, typer.Option(help="Only datasets this owner owns.")] = None,
    layer: Annotated[str | None, typer.Option(help="bronze, silver, gold, feature, training...")] = None,
    column: Annotated[str | None, typer.Option(help="Only datasets with a column of this name.")] = None,
    namespace: NsOpt = None,
    quality: Annotated[str | None, typer.Option(help="failed or passed: quality of the current version.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Ranked search over names, descriptions, tags, owners and column names."""
    from catalog.search import parse_query  # deferred: the catalog loads only when a command runs

    hits = _catalog(ctx).search(query, tags=tag or [], owner=owner, layer=layer, column=column,
                                namespace=namespace, quality=quality, limit=limit)
    note = parse_query(query).note
    if note:
        err_console.print(note, highlight=False, markup=False)
    if as_json:
        print_json([h.as_dict() for h in hits])
        return
    if not hits:
        if not note:
            console.print(redact_text(f"nothing found for {query!r}"), highlight=False, markup=False)
        return
    rows = [{"name": h.name, "layer": h.layer, "version": h.current_version, "tags": h.tags, "owners": h.owners,
             "matched": h.matched, "quality": h.quality, "description": (h.description or "")[:60]} for h in hits]
    print_table(rows, ["name", "layer", "version", "tags", "owners", "matched", "quality", "description"])


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[int | None, typer.Option(help="A past version.")] = None,
    namespace: NsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schema, versions, owners, tags, last runs, quality, upstream and downstream of a dataset."""
    d = _catalog(ctx).show(name, version=version, namespace=namespace)
    if as_json:
        print_json(d)
        return
    v = d["version"] or {}
    # Names, descriptions, owners come from anyone: escaped, never read as Rich markup.
    console.print(f"[bold]{escape(d['name'])}[/]  ({escape(d['namespace'])}, {escape(d['kind'])}, "
                  f"layer {escape(d['layer'] or '-')})")
    if d["description"]:
        console.print(d["description"], markup=False)
    console.print(f"location: {d['location'] or '-'}   format: {d['format'] or '-'}", markup=False)
    if v:
        console.print(f"version {v['version']} ({v['operation'] or '-'}, {v['committed_at']:%Y-%m-%d %H:%M:%S}): "
                      f"{v['rows'] if v['rows'] is not None else '?'} rows, {v['files'] or 0} files, "
                      f"{human_bytes(v['bytes'] or 0)}", markup=False)
    console.print(f"owners: {', '.join(d['owners']) or '-'}   tags: {', '.join(d['tags']) or '-'}"
                  + (f"   inherited: {', '.join(d['inherited_tags'])}" if d["inherited_tags"] else ""), markup=False)
    console.print(f"quality: {d['quality_status'] or 'not validated'}", markup=False)
    console.print(f"upstream: {', '.join(d['upstream']) or '-'}", markup=False)
    console.print(f"downstream: {', '.join(d['downstream']) or '-'}", markup=False)
    print_table(d["schema"], ["name", "type", "nullable", "tags", "description"], title="schema")
    if d["versions"]:
        print_table(d["versions"][:5], ["version", "committed_at", "operation", "rows", "files", "run_id"],
                    title="versions")
    if d["runs"]:
        print_table(d["runs"], ["run_id", "job", "status", "started_at", "duration_s"], title="last runs")


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    name: str,
    upstream: Annotated[bool, typer.Option("--upstream", help="Only what it is built from.")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="Only what uses it.")] = False,
    depth: Annotated[int, typer.Option(help="Hops to follow.")] = 5,
    column: Annotated[str | None, typer.Option(help="Column-level lineage of this column.")] = None,
    version: Annotated[int | None, typer.Option(help="What this version was built from (exact versions).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, mermaid or dot.")] = "text",
    namespace: NsOpt = None,
) -> None:
    """The lineage graph around a dataset, at dataset or column level, latest or historical."""
    direction = "upstream" if upstream and not downstream else "downstream" if downstream and not upstream else "both"
    graph = _catalog(ctx).lineage(name, direction=direction, depth=depth, column=column, version=version,
                                  namespace=namespace)
    from catalog.lineage import render  # deferred: the catalog loads only when a command runs

    out = render(graph, fmt)
    if fmt == "json":
        print_json(out)
    else:
        sys.stdout.write(out + "\n")


@app.command("runs")
def runs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option(help="Only runs of this job.")] = None,
    status: Annotated[str | None, typer.Option(help="running, completed, failed or aborted.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only runs that read or wrote this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, newest first. A run whose process died is shown (and recorded) as failed."""
    rows = _catalog(ctx).runs(job=job, status=status, dataset=dataset, limit=limit)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["process"] = f"{row['pid']}@{row['host']}" if row["pid"] is not None else None
    print_table(rows, ["run_id", "job", "status", "started_at", "duration_s", "process", "error"])


@app.command("run")
def run(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """One run: status, parameters, inputs and outputs with versions (failed if its process died)."""
    info = _catalog(ctx).run_info(run_id)
    if as_json:
        print_json(info)
        return
    console.print(f"[bold]{escape(info['job'])}[/] run {info['run_id']}: {info['status']}"
                  f" ({info['duration_s'] if info['duration_s'] is not None else '-'} s)")
    if info["error"]:
        console.print(info["error"], style="red", markup=False)
    print_table(info["inputs"], ["namespace", "name", "version"], title="inputs")
    print_table(info["outputs"], ["namespace", "name", "version"], title="outputs")


@app.command("repair")
def repair(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="One table (default: every table under the root).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record every committed version the catalog lacks, from the tables' Delta logs.

    A commit whose catalog record failed (the database was down) is recorded here, with the
    run stamped on the commit; the next write to the table does the same for that table.
    """
    done = state(ctx).lake().repair(table)
    if as_json:
        print_json({"recorded": done})
        return
    if not done:
        console.print("the catalog knows every committed version")
        return
    print_table([{"table": name, "versions": ", ".join(map(str, versions))} for name, versions in done.items()],
                ["table", "versions"], title="versions recorded")


@app.command("tag")
def tag(
    ctx: typer.Context,
    name: str,
    tag_name: Annotated[str, typer.Argument(metavar="TAG")],
    column: Annotated[str | None, typer.Option(help="Tag this column.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tag.")] = False,
    namespace: NsOpt = None,
) -> None:
    """Tag a dataset or one of its columns (``--remove`` to untag)."""
    cat = _catalog(ctx)
    if remove:
        cat.untag(name, tag_name, column=column, namespace=namespace)
    else:
        cat.tag(name, tag_name, column=column, namespace=namespace)
    console.print(redact_text(f"{'untagged' if remove else 'tagged'} {name}{'.' + column if column else ''}: "
                              f"{tag_name}"), markup=False)


@app.command("propagate")
def propagate(
    ctx: typer.Context,
    tag_name: Annotated[str, typer.Argument(metavar="TAG")],
    off: Annotated[bool, typer.Option("--off", help="Stop propagating it.")] = False,
) -> None:
    """Make a tag (e.g. pii) show on every dataset downstream of one that has it."""
    _catalog(ctx).define_tag(tag_name, propagate=not off)
    console.print(redact_text(f"tag {tag_name}: {'no longer propagates' if off else 'propagates downstream'}"),
                  markup=False)


@app.command("describe")
def describe(
    ctx: typer.Context,
    name: str,
    text: str,
    column: Annotated[str | None, typer.Option(help="Describe this column.")] = None,
    namespace: NsOpt = None,
) -> None:
    """Set the description of a dataset or a column."""
    _catalog(ctx).describe(name, text, column=column, namespace=namespace)
    console.print(redact_text(f"described {name}{'.' + column if column else ''}"), markup=False)


@app.command("owner")
def owner(
    ctx: typer.Context,
    name: str,
    owner_name: Annotated[str, typer.Argument(metavar="OWNER")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove this owner.")] = False,
    namespace: NsOpt = None,
) -> None:
    """Add (or ``--remove``) an owner of a dataset."""
    cat = _catalog(ctx)
    if remove:
        cat.remove_owner(name, owner_name, namespace=namespace)
    else:
        cat.add_owner(name, owner_name, namespace=namespace)
    console.print(redact_text(f"{name}: owner {owner_name} {'removed' if remove else 'added'}"), markup=False)


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON-lines file of OpenLineage events, or - for stdin.")],
) -> None:
    """Add OpenLineage events from other producers (Airflow, dbt, Spark...) to the catalog."""
    # deferred: the catalog loads only when a command runs
    from catalog.openlineage import ingest_lines

    cat = _catalog(ctx, write=True)
    if file == "-":
        count = ingest_lines(cat, sys.stdin, "stdin")
    else:
        path = Path(file)
        if not path.is_file():
            raise LakeError(f"no such file: {file}")
        with path.open(encoding="utf-8") as fh:
            count = ingest_lines(cat, fh, str(path))
    console.print(f"ingested {count} events")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (beyond loopback only once a token exists).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
) -> None:
    """HTTP API: POST /api/v1/lineage (OpenLineage events in), search, datasets, lineage, health.

    An alias of `lake serve` (the whole service, grants and audit included) on port 5000.
    Requests need `Authorization: Bearer <token>` once any token or principal exists; with none,
    the server listens on loopback only. Limits: [server] in lake.toml.
    """
    from lake.service.run import serve as run_service  # deferred: the service loads only to serve

    run_service(state(ctx).lake(catalog_only=True), host, port, what="the catalog",
                announce=lambda text: console.print(text, highlight=False, markup=False))
