"""``lake jobs`` and ``lake ingest``: run declared jobs, or load a file without writing one."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from lake.cli.context import state
from lake.cli.output import console, print_json, print_table
from lake.errors import LakeError

app = typer.Typer(help="List, run and submit ingestion and transformation jobs.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help="k=v job parameter (repeat).")]


def _params(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LakeError(f"--param {item!r}: write it as key=value")
        out[key.strip()] = value
    return out


def _folder(ctx: typer.Context) -> Any:
    from lake.pipeline.registry import jobs_folder

    return jobs_folder(state(ctx).settings().jobs_dir)


@app.command("list")
def list_jobs(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The jobs in the jobs folder."""
    from lake.pipeline.registry import discover_jobs

    jobs = discover_jobs(_folder(ctx))
    rows = [{"name": j.name, "source": j.source.kind, "target": j.target, "mode": j.mode,
             "description": j.description or ""} for j in jobs.values()]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "source", "target", "mode", "description"])


def _show_report(report: Any, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    if report.skipped or report.version is None:
        console.print(f"{report.job}: nothing to do ({'; '.join(report.notes) or 'already committed'}); "
                      f"{report.rows_read} rows read, run {report.run_id}", highlight=False, markup=False)
        return
    console.print(f"{report.job} batch {report.batch}: {report.rows_read} rows read, {report.rows_written} written, "
                  f"{report.rows_quarantined} quarantined, {report.files} source files; "
                  f"table version {report.version}, run {report.run_id} ({report.seconds:.1f} s)")


def run_job(ctx: typer.Context, job: Any, full_refresh: bool, params: dict[str, str], as_json: bool) -> None:
    from lake.cli.progress import Bars
    from lake.pipeline.runner import JobRunner

    with Bars(job.name, enabled=not as_json) as bars:  # stderr, on a terminal only: files parsed, rows read
        bars.update(job.name, message="starting")
        runner = JobRunner(state(ctx).lake(write=True), progress=bars.job(job.name))
        report = runner.run(job, full_refresh=full_refresh, params=params)
    _show_report(report, as_json)


@app.command("run")
def run(
    ctx: typer.Context,
    name: str,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Re-read every source file; rebuild.")] = False,
    param: ParamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a job here (Spark local[*] or the configured master); one catalog run."""
    from lake.pipeline.registry import find_job

    run_job(ctx, find_job(_folder(ctx), name), full_refresh, _params(param), as_json)


@app.command("submit")
def submit(
    ctx: typer.Context,
    name: str,
    master: Annotated[str, typer.Option("--master", help="Cluster URL, e.g. spark://host:7077.")],
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Re-read every source file; rebuild.")] = False,
    param: ParamOpt = None,
) -> int:
    """Run a job on a Spark cluster through spark-submit (code shipped, log streamed)."""
    from lake.pipeline.registry import find_job
    from lake.pipeline.submit import submit as do_submit

    folder = _folder(ctx)
    find_job(folder, name)  # a typo fails here, not on the cluster
    code = do_submit(state(ctx).settings(), name, master, folder, params=_params(param), full_refresh=full_refresh)
    if code != 0:
        raise LakeError(f"job {name} failed on {master} (spark-submit exit status {code}); its log is above")
    return 0


@app.command("status")
def status(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """A run: status, rows read/written/quarantined, inputs and outputs."""
    info = state(ctx).lake().catalog.run_info(run_id)
    if as_json:
        print_json(info)
        return
    stats = info.get("stats") or {}
    console.print(f"[bold]{escape(info['job'])}[/] run {info['run_id']}: {info['status']}", highlight=False)
    console.print(f"rows read {stats.get('rows_read', '-')}, written {stats.get('rows_written', '-')}, "
                  f"quarantined {stats.get('rows_quarantined', '-')}; started {info['started_at']}, "
                  f"{info['duration_s'] if info['duration_s'] is not None else '-'} s")
    if info["error"]:
        console.print(f"[red]{escape(info['error'])}[/]", highlight=False)  # "[feast] repo" stays as written
    print_table(info["inputs"] + info["outputs"], ["namespace", "name", "version"])


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="A file, folder or glob (local or s3://); several files "
                                                    "of one folder also work (a glob the shell expanded).")],
    table: Annotated[str, typer.Option("--table", help="Target table, e.g. bronze.orders.")],
    fmt: Annotated[str, typer.Option("--format", help="csv, json or parquet.")] = "csv",
    mode: Annotated[str, typer.Option(help="append or overwrite.")] = "append",
    partition_by: Annotated[list[str] | None, typer.Option("--partition-by", help="Partition column (repeat).")] = None,
    delimiter: Annotated[str, typer.Option(help="CSV field delimiter.")] = ",",
    as_json: JsonOpt = False,
) -> None:
    """Load files into a table without writing a job (incremental: re-running loads only new files)."""
    from lake.pipeline.spec import CsvOptions, FileSource, Job

    if fmt not in ("csv", "json", "parquet"):
        raise LakeError(f"unknown format {fmt!r}: use csv, json or parquet")
    path = source_path(paths)
    name = "ingest." + table.replace(".", "_")
    job = Job(name=name, source=FileSource(path, format=fmt, csv=CsvOptions(delimiter=delimiter)),  # type: ignore[arg-type]
              target=table, mode=mode, partition_by=partition_by or [])  # type: ignore[arg-type]
    run_job(ctx, job, False, {}, as_json)


def source_path(paths: list[str]) -> str:
    """One source path for ``lake ingest``: the one given, or the glob a shell expanded back.

    ``lake ingest ./drop/*.csv`` reaches us as every matching file; the files of one folder
    with one extension that are all its files of that extension become ``<folder>/*<ext>``.
    """
    import glob
    import os

    if len(paths) == 1:
        # On the command line, relative means relative to here.
        return paths[0] if "://" in paths[0] else os.path.abspath(paths[0])
    files = sorted(os.path.abspath(p) for p in paths)
    folders = {os.path.dirname(f) for f in files}
    suffixes = {os.path.splitext(f)[1] for f in files}
    if any("://" in p for p in paths) or len(folders) != 1 or len(suffixes) != 1:
        raise LakeError(f"{len(paths)} paths given: ingest takes one file, folder or glob; quote a glob so the "
                        "shell leaves it alone: lake ingest 'drop/*.csv' --table ...")
    pattern = os.path.join(folders.pop(), "*" + suffixes.pop())
    if sorted(glob.glob(pattern)) != files:
        raise LakeError(f"{len(paths)} files given, not every file matching {pattern}: ingest takes one file, "
                        "folder or glob; quote a glob so the shell leaves it alone: lake ingest 'drop/*.csv' ...")
    return pattern
