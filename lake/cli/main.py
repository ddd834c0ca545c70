"""``lake``: the command line of the backbone.

A user's mistake (any :class:`~lake.errors.LakeError`) prints one message and
exits with status 1; only unexpected errors show a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from lake.cli import (
    access_cmd,
    catalog_cmd,
    config_cmd,
    features_cmd,
    jobs_cmd,
    monitor_cmd,
    pipeline_cmd,
    quality_cmd,
    serve_cmd,
    sql_cmd,
    table_cmd,
    token_cmd,
    training_cmd,
    ui_cmd,
)
from lake.cli.context import State
from lake.cli.output import err_console
from lake.errors import LakeError

app = typer.Typer(
    name="lake",
    help="Data-lake and feature-store backbone: Spark jobs into Delta Lake, a lineage catalog, "
    "Feast features, DuckDB queries.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(table_cmd.app, name="table")
app.add_typer(catalog_cmd.app, name="catalog")
app.command("sql")(sql_cmd.sql)
app.command("ui")(ui_cmd.ui)
app.add_typer(jobs_cmd.app, name="jobs")
app.command("ingest")(jobs_cmd.ingest)
app.add_typer(quality_cmd.app, name="quality")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(features_cmd.app, name="features")
app.add_typer(training_cmd.app, name="training")
app.add_typer(pipeline_cmd.app, name="pipeline")
app.add_typer(token_cmd.app, name="token")
# issue 18: principals, grants, masking policies, the audit trail, the shared service
app.add_typer(access_cmd.principal_app, name="principal")
app.command("grant")(access_cmd.grant)
app.command("revoke")(access_cmd.revoke)
app.command("grants")(access_cmd.grants)
app.add_typer(access_cmd.mask_app, name="mask")
app.command("audit")(access_cmd.audit)
app.command("serve")(serve_cmd.serve)


@app.callback()
def _root(
    ctx: typer.Context,
    root: Annotated[str | None, typer.Option("--root", help="Lake root (folder or s3://bucket/prefix).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (default ./lake.toml).")] = None,
) -> None:
    ctx.obj = State(root=root, config_file=config)


def error_object(exc: LakeError) -> dict[str, Any]:
    """An error as ``--json`` prints it: its type, message and context fields."""
    return {"error": {"type": type(exc).__name__, "message": exc.message,
                      **{k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
                         for k, v in exc.context.items()}}}


def report_error(exc: LakeError, as_json: bool) -> None:
    """One line for a user's mistake (plus its context fields), or a JSON object with ``--json``."""
    if as_json:
        print(json.dumps(error_object(exc)))
        return
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    shown = {k: v for k, v in exc.context.items() if str(v) not in exc.message}
    if shown:
        err_console.print("  " + ", ".join(f"{k}: {v}" for k, v in shown.items()), style="dim", highlight=False,
                          soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, standalone_mode=False)
    except LakeError as exc:
        report_error(exc, "--json" in args)
        return 1
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
