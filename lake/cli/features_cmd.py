"""``lake features``: apply, list, show, materialize, indexes, training frames, online values, serving."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lake.cli.context import state
from lake.cli.output import console, print_json, print_table
from lake.errors import LakeError

app = typer.Typer(help="The feature store: Feast definitions over gold tables, training frames, online serving.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FeaturesOpt = Annotated[list[str] | None, typer.Option("--features", "-f",
                                                       help="view:feature (repeat, or comma-separated).")]
ServiceOpt = Annotated[str | None, typer.Option("--feature-service", "-s", help="A feature service name.")]


def _features(items: list[str] | None) -> list[str] | None:
    if not items:
        return None
    return [f.strip() for item in items for f in item.split(",") if f.strip()]


@app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    repo: Annotated[Path | None, typer.Option(help="Feature repository (default ./feature_repo).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply the feature repository to the registry and register its views in the catalog."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.apply import apply

    result = apply(state(ctx).lake(), repo)
    if as_json:
        print_json(result.__dict__)
        return
    for kind, names in (("entities", result.entities), ("feature views", result.feature_views),
                        ("on-demand views", result.on_demand_views), ("feature services", result.feature_services)):
        if names:
            console.print(f"{kind}: {', '.join(names)}")
    for view, src in result.sources.items():
        console.print(f"  {view} <- {src['table']} v{src['version']}")
    if result.deleted:
        console.print(f"deleted: {', '.join(result.deleted)}")


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Registered feature views, on-demand views and services."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.apply import describe

    rows = describe(state(ctx).lake())
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["kind", "name", "entities", "features", "ttl", "source", "online"], title="features")


@app.command("show")
def show_cmd(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """One feature view or service: features, types, entities, source table and version, TTL."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.apply import show

    info = show(state(ctx).lake(), name)
    if as_json:
        print_json(info)
        return
    console.print(f"[bold]{info['name']}[/] ({info['kind']})" + (f": {info['description']}" if info.get("description")
                                                                else ""))
    for key in ("entities", "join_keys", "ttl", "source", "sources", "request_sources", "owner"):
        if info.get(key):
            console.print(f"  {key}: {info[key]}", highlight=False)
    feats = info["features"]
    if feats and isinstance(feats[0], dict):
        print_table(feats, ["name", "type", "description"])
    else:
        console.print("  features: " + ", ".join(feats))


@app.command("materialize")
def materialize_cmd(
    ctx: typer.Context,
    views: Annotated[list[str] | None, typer.Argument(help="Feature views (default: every online view).")] = None,
    incremental: Annotated[bool, typer.Option("--incremental", help="Only what changed since the last run.")] = False,
    end: Annotated[str | None, typer.Option(help="Ignore rows after this time (ISO 8601).")] = None,
    engine: Annotated[str | None, typer.Option(
        help="duckdb, spark (executors write to Redis in parallel) or auto; default: [features] engine.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load the latest feature values into the online store (SQLite or Redis)."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.cli.progress import Bars
    from lake.features.materialize import materialize
    from lake.table import parse_when

    until = parse_when(end) if end else None
    with Bars("materialize", enabled=not as_json) as bars:  # stderr, on a terminal only: rows per view

        def progress(view: str, done: int, total: int | None) -> None:
            bars.update(view, message="entities written", rows=done, total_rows=total)

        results = materialize(state(ctx).lake(), views or None, incremental=incremental, end=until,
                              progress=progress, engine=engine)
    rows = [{"view": r.view, "source": f"{r.table}@{r.version}", "mode": r.mode,
             "since": r.previous_version, "files": r.files_read, "entities": r.entities, "written": r.written,
             "seconds": round(r.seconds, 2), "run_id": r.run_id} for r in results]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["view", "source", "mode", "since", "files", "entities", "written", "seconds"],
                    title="materialized")


@app.command("index")
def index_cmd(
    ctx: typer.Context,
    views: Annotated[list[str] | None, typer.Argument(help="Feature views (default: all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the point-in-time indexes training retrieval uses, for the tables' latest versions."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.retrieval import prepare

    with Progress(TextColumn("indexing"), BarColumn(), TextColumn("{task.completed}/{task.total} views"),
                  TimeElapsedColumn(), console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("views", total=len(views) if views else None)
        rows = prepare(state(ctx).lake(), views or None, progress=lambda _: bar.advance(task))
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["view", "table", "version", "rows", "keys", "seconds"], title="point-in-time indexes")


def _read_frame(path: Path) -> Any:
    # deferred: pyarrow loads only for the commands that read files (`lake --help` stays fast)
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LakeError(f"entity file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path)
        if path.suffix.lower() == ".csv":
            return pacsv.read_csv(path)
        if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
            return pajson.read_json(path)
    except Exception as exc:
        raise LakeError(f"cannot read entity file {path}: {str(exc).splitlines()[0]}") from exc
    raise LakeError(f"entity file {path}: use .parquet, .csv or .jsonl")


@app.command("training")
def training_cmd(
    ctx: typer.Context,
    entity_file: Annotated[Path, typer.Argument(help="Entity keys + event times (.parquet, .csv, .jsonl).")],
    features: FeaturesOpt = None,
    feature_service: ServiceOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the frame here (.parquet or .csv).")] = None,
    save: Annotated[str | None, typer.Option(help="Also save it as training dataset NAME (reproducible).")] = None,
    timestamp_column: Annotated[str, typer.Option(help="The entity file's event-time column.")] = "event_timestamp",
    full_feature_names: Annotated[bool, typer.Option(help="Name columns view__feature.")] = False,
    engine: Annotated[str | None, typer.Option(
        help="duckdb (one process), spark (the [spark] master) or auto (by size); default: [features] engine.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A point-in-time correct training frame for the entity rows in ENTITY_FILE.

    With the Spark engine and --save, the executors write training.NAME; the frame is collected to
    this process only for --out or the printed preview (its first 20 rows).
    """
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.data import normalized
    from lake.features.retrieval import ENGINES, retrieve
    from lake.features.training import content_hash, save_training_dataset, spark_hash

    lake = state(ctx).lake()
    entities = _read_frame(entity_file)
    feats = _features(features)
    info: dict[str, Any]
    if engine is not None and engine not in ENGINES:
        raise LakeError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    chosen: Any = engine
    if save:
        saved = save_training_dataset(lake, save, entities, feats, feature_service=feature_service,
                                      timestamp_column=timestamp_column, full_feature_names=full_feature_names,
                                      engine=chosen)
        frame = saved.frame
        info = {"training_dataset": saved.id, "table": f"{saved.table}@{saved.version}", "rows": saved.rows,
                "content_hash": saved.content_hash, "sources": saved.sources, "engine": frame.engine}
    else:
        frame = retrieve(lake, entities, feats, feature_service=feature_service, timestamp_column=timestamp_column,
                         full_feature_names=full_feature_names, engine=chosen)
        info = {"rows": frame.num_rows, "content_hash": content_hash(normalized(frame.data)) if frame.spark is None
                else spark_hash(lake, frame.spark)[0], "sources": frame.sources, "engine": frame.engine}
    preview = frame.data if frame.spark is None or out is not None else frame.spark.limit(20).toArrow()
    data = preview
    if out is not None:
        # deferred: pyarrow loads only for the commands that write files
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if out.suffix.lower() == ".csv":
            pacsv.write_csv(data, out)
        else:
            pq.write_table(data, out)
        info["out"] = str(out)
    if as_json:
        print_json(info)
        return
    if out is None:
        rows = int(info["rows"])
        print_table(data.slice(0, 20).to_pylist(), data.column_names,
                    title=f"{rows:,} rows" + (" (first 20)" if rows > 20 else ""))
    for key, value in info.items():
        console.print(f"{key}: {value}", highlight=False)


@app.command("get")
def get_cmd(
    ctx: typer.Context,
    entity: Annotated[list[str], typer.Option("--entity", "-e", help="key=value (repeat for several rows).")],
    features: FeaturesOpt = None,
    feature_service: ServiceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Latest online values for entity keys (what serving returns)."""
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.online import OnlineReader

    rows: list[dict[str, Any]] = []
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep:
            raise LakeError(f"--entity {item!r}: write it as key=value")
        parsed: Any = int(value) if value.lstrip("-").isdigit() else value
        rows.append({key.strip(): parsed})
    # light: the registry file is read without importing Feast when it can be (seconds saved)
    reader = OnlineReader(state(ctx).lake(), light=True)
    result = reader.get(rows, _features(features), feature_service=feature_service).to_dict()
    if as_json:
        print_json(result)
        return
    names = list(result)
    print_table([dict(zip(names, vals, strict=True)) for vals in zip(*result.values(), strict=True)], names)


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (beyond loopback only once a token exists).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 6566,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_requests: Annotated[bool | None, typer.Option("--log-requests/--no-log-requests",
                                                      help="Log requests and served values to the lake.")] = None,
) -> None:
    """HTTP feature server (Feast's /get-online-features format) over the online store.

    Requests need `Authorization: Bearer <token>` once any token exists (`lake token create`);
    with none, the server listens on loopback only. Limits: [server] and [feast] in lake.toml.
    """
    # heavy: lake.features (DuckDB, pandas, Delta) is imported only when the command runs
    from lake.features.server import serve

    console.print(f"serving features on http://{host}:{port} (POST /get-online-features, GET /health)")
    serve(state(ctx).lake(), host=host, port=port, workers=workers, log_requests=log_requests)
