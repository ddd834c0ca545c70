"""``lake config``: the resolved settings."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lake.cli.context import state
from lake.cli.output import console, print_json

app = typer.Typer(help="Show the resolved settings.", no_args_is_help=True)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "conf":
            out.extend(_flatten(value, name + "."))
        else:
            out.append((name, value))
    return out


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the settings after arguments, LAKE_* variables, lake.toml and defaults (secrets masked)."""
    masked = state(ctx).settings().masked()
    if as_json:
        print_json(masked)
        return
    from rich.table import Table

    table = Table(header_style="bold", title="lake settings")
    table.add_column("setting")
    table.add_column("value")
    for key, value in _flatten(masked):
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
