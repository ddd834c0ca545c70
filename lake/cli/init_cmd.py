"""``lake init``: start a lake project (settings, jobs, suites, features, next steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lake.cli.output import console


def init(
    folder: Annotated[Path, typer.Argument(help="The project folder (made if missing).")] = Path("."),
    example: Annotated[str, typer.Option("--example", help="basic (sample orders) or stocks "
                                                           "(the demo's pipeline on real data).")] = "basic",
) -> None:
    """Start a lake project: lake.toml, jobs/ (a Python and a YAML job), quality/, feature_repo/, a README."""
    from lake.scaffold import init_project  # deferred: the stocks example loads vega-datasets

    made = init_project(folder, example)
    console.print(f"made a {example} lake project in {folder.resolve()}:", highlight=False, markup=False)
    shown = [f for f in made.files if "landing/" not in f]
    landed = [f for f in made.files if "landing/" in f]
    for name in shown:
        console.print(f"  {name}", highlight=False, markup=False)
    if landed:
        rows = f", {made.landed_rows} rows" if made.landed_rows else ""
        console.print(f"  {len(landed)} sample file(s) in lakehouse/landing/{rows}", highlight=False, markup=False)
    where = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    console.print(f"next: {where}cat README.md", highlight=False, markup=False)
