"""``lake quality``: validate a table version, propose a starter suite, build Data Docs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lake.cli.context import state
from lake.cli.output import console, print_json, print_table
from lake.errors import LakeError, VersionNotFoundError

app = typer.Typer(help="Expectation suites: validate, profile, Data Docs.", no_args_is_help=True)


def _suite(ctx: typer.Context, table: str, suite_file: Path | None) -> Any:
    from lake.quality.apply import suite_for

    lake = state(ctx).lake()
    name = lake.table(table).name
    suite = suite_for(lake.settings.quality_dir, name, str(suite_file) if suite_file else None, Path.cwd())
    if suite is None:
        raise LakeError(f"no suite for {name}: add one to the quality folder (`lake quality profile {name}` "
                        "proposes a start) or pass --suite FILE")
    return suite


@app.command("validate")
def validate(
    ctx: typer.Context,
    table: str,
    version: Annotated[int | None, typer.Option(help="A past version (default: the latest).")] = None,
    suite_file: Annotated[Path | None, typer.Option("--suite", help="Suite YAML (default: the quality folder's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """Validate an existing table version; the result goes to the catalog. Exit status 1 if it fails."""
    from lake.quality.apply import record
    from lake.quality.gate import validate as run_suite

    lake = state(ctx).lake()
    suite = _suite(ctx, table, suite_file)
    t = lake.existing(table)
    latest = t.version()
    if version is not None and not 0 <= version <= latest:  # said before Spark starts (a minute on a laptop)
        raise VersionNotFoundError(f"{t.name} has no version {version} (versions 0 to {latest}; "
                                   f"`lake table history {t.name}` lists them)", table=t.name, version=version)
    at = version if version is not None else latest
    report = run_suite(t.to_spark(lake.spark(app_name="lake-quality"), version=at), suite)
    record(lake.catalog, report, t.name, at, None)
    if as_json:
        print_json({"table": t.name, "version": at, "suite": suite.name, "success": report.success,
                    "statistics": report.statistics, "results": report.results})
    else:
        print_table([{"expectation": r["expectation"], "column": r["column"], "success": r["success"],
                      "unexpected": r["unexpected_count"], "observed": r["observed_value"], "examples": r["examples"]}
                     for r in report.results], ["expectation", "column", "success", "unexpected", "observed",
                                                "examples"], title=f"{suite.name} on {t.name} v{at}")
        console.print(f"{'[green]passed' if report.success else '[red]failed'}[/]: "
                      f"{report.statistics['successful']}/{report.statistics['evaluated']} expectations")
    return 0 if report.success else 1


@app.command("profile")
def profile(
    ctx: typer.Context,
    table: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write the YAML here (default: print it).")] = None,
    engine: Annotated[str | None, typer.Option(
        help="duckdb, spark or auto (default: [features] engine); the same statistics either way.")] = None,
) -> None:
    """Propose a starter suite from the data (review it before you commit it)."""
    from lake.monitor.profile import propose

    lake = state(ctx).lake()
    text = propose(lake, lake.existing(table).name, engine=engine)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@app.command("docs")
def docs(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the site (default <root>/_quality).")] = None,
) -> None:
    """Validate every suite's table and build Great Expectations Data Docs (HTML)."""
    from lake.monitor.quality_docs import build_docs

    lake = state(ctx).lake()
    index = build_docs(lake, out)
    console.print(f"Data Docs: {index}")
