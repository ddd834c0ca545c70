"""``lake``: the command line of the backbone.

A user's mistake prints one line and no traceback: a :class:`~lake.errors.LakeError`
exits with status 1, a usage mistake (unknown command or option, missing argument,
bad option value) with status 2. Only unexpected errors show a traceback.

``lake --help`` stays fast: command modules import their implementation (pyarrow,
pandas, the catalog, Spark, Feast) inside the command functions, when they run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.main import solve_typer_info_help

from lake.cli import (
    access_cmd,
    catalog_cmd,
    config_cmd,
    features_cmd,
    init_cmd,
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
from lake.errors import LakeError, LakeWarning

app = typer.Typer(
    name="lake",
    help="Data-lake and feature-store backbone: Spark jobs into Delta Lake, a lineage catalog, "
    "Feast features, DuckDB queries.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    # Plain help: Rich's Markdown help renderer alone costs ~0.1 s of every `lake --help`.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
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
app.command("init")(init_cmd.init)


def version_text() -> str:
    """``lake <version>`` of the installed distribution."""
    from importlib.metadata import PackageNotFoundError, version  # only for --version

    try:
        return f"lake {version('lake-backbone')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "lake (not installed)"


def _show_version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    root: Annotated[str | None, typer.Option("--root", help="Lake root (folder or s3://bucket/prefix).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (default ./lake.toml).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show engine warnings and logs "
                                                                  "(Spark, Feast).")] = False,
    create: Annotated[bool, typer.Option("--create", help="Make the lake root if it does not exist "
                                                          "(commands that write make it anyway).")] = False,
    _version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                           help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = State(root=root, config_file=config, verbose=verbose, create=create)
    quiet_engines(verbose)


def quiet_engines(verbose: bool) -> None:
    """Engine warnings and logs (Feast's RuntimeWarnings, library INFO lines) only with ``--verbose``.

    The project's own warnings (:class:`~lake.errors.LakeWarning`) and log warnings always show.
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", category=LakeWarning)
    warnings.formatwarning = one_line_warning
    logging.getLogger().setLevel(logging.ERROR)
    for own in ("lake", "catalog"):
        logging.getLogger(own).setLevel(logging.WARNING)


def one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    """A warning as the CLI prints it: ``warning: <message>`` (no file, line or source)."""
    return f"warning: {message}\n"


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
        err_console.print(escape("  " + ", ".join(f"{k}: {v}" for k, v in shown.items())), style="dim", highlight=False,
                          soft_wrap=True)


def report_usage_error(exc: typer.TyperException) -> int:
    """One line for a usage mistake (Typer's own copies of click's exceptions); returns the exit status.

    ``lake`` or a group alone prints that group's help instead.
    """
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        print(ctx.get_help())
        return 2
    message = " ".join(exc.format_message().split())
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err_console.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}", highlight=False, soft_wrap=True)
    return int(getattr(exc, "exit_code", 2))


ROOT_OPTIONS_WITH_VALUE = ("--root", "--config")


def command_word(args: list[str]) -> str | None:
    """The command or group the arguments name (``table`` in ``lake --root x table ls``), if any."""
    it = iter(args)
    for arg in it:
        if arg in ROOT_OPTIONS_WITH_VALUE:
            next(it, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _placeholder() -> None:
    """Stands for a command group that this invocation does not run."""


def command_tree(args: list[str]) -> typer.Typer:
    """``app`` with only the group the arguments name built in full.

    Typer builds every command's parameters from its signature each time it runs (about
    0.1 s for the whole tree); the other groups are stood in for by empty groups with the
    same name and help, which is all ``lake --help`` and "no such command" need.
    Shell completion gets the whole tree.
    """
    if any(key.startswith("_LAKE_COMPLETE") or key == "_TYPER_COMPLETE_ARGS" for key in os.environ):
        return app
    word = command_word(args)
    pruned = copy.copy(app)
    pruned.registered_groups = []
    for info in app.registered_groups:
        if info.name == word or info.typer_instance is None:
            pruned.registered_groups.append(info)
            continue
        stub = typer.Typer(help=solve_typer_info_help(info))
        stub.callback()(_placeholder)
        stand_in = copy.copy(info)
        stand_in.typer_instance = stub
        stand_in.help = solve_typer_info_help(info)
        pruned.registered_groups.append(stand_in)
    return pruned


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 done, 1 failed, 2 usage mistake, 130 interrupted).

    Warning filters and log levels set for the run (:func:`quiet_engines`) are put back when it
    returns, so a program or test calling ``main`` keeps its own.
    """
    args = sys.argv[1:] if argv is None else argv
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers),
             {name: logging.getLogger(name).level for name in ("lake", "catalog")})
    with warnings.catch_warnings():
        try:
            return _run(args)
        finally:
            root_logger.setLevel(saved[0])
            root_logger.handlers[:] = saved[1]
            for name, level in saved[2].items():
                logging.getLogger(name).setLevel(level)


def _run(args: list[str]) -> int:
    try:
        result = command_tree(args)(args=args, standalone_mode=False, prog_name="lake")
    except LakeError as exc:
        report_error(exc, "--json" in args)
        return 1
    except typer.TyperException as exc:  # the pinned Typer raises its own UsageError, BadParameter...
        return report_usage_error(exc)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
