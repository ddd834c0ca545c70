"""``lake init``: a new lake project from a template, with comments saying what each file is for.

Templates live in ``lake/resources/init/<example>/``: ``basic`` (a Python and a YAML job over
two days of sample orders, a suite, a Feast repository) and ``stocks`` (the demo's pipeline
over real public data, landed as yearly CSV files). Python files are stored as ``*.py.tmpl``
so the package's linters and import checks never read them as project modules; ``$project``
in ``lake.toml`` and ``README.md`` becomes the project's name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from lake.errors import LakeError, NotInstalledError

EXAMPLES = ("basic", "stocks")
TEMPLATED = ("lake.toml", "README.md")
GITIGNORE = "# the lake's tables and catalog; the landed sample files stay\nlakehouse/*\n!lakehouse/landing/\n"


@dataclass(frozen=True)
class Scaffold:
    """What ``lake init`` made."""

    folder: Path
    files: tuple[str, ...]
    """Paths relative to :attr:`folder`, sorted."""
    landed_rows: int = 0
    """Sample rows landed in ``lakehouse/landing/`` (the stocks example)."""


def template(example: str) -> Traversable:
    if example not in EXAMPLES:
        raise LakeError(f"unknown example {example!r}: use {', '.join(EXAMPLES)}")
    return files("lake").joinpath("resources", "init", example)


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        elif not child.name.startswith("."):
            out.append((rel.removesuffix(".tmpl"), child))
    return out


def init_project(folder: Path, example: str = "basic") -> Scaffold:
    """Write a new project into ``folder`` (made if missing); never overwrites a file.

    Args:
        folder: the project folder; its name becomes the Feast project's.
        example: ``basic`` or ``stocks``.

    Returns:
        What was written.

    Raises:
        LakeError: an unknown example, or a file the template writes exists already.
    """
    entries = _walk(template(example))
    targets = [(rel, node) for rel, node in entries] + [(".gitignore", None)]
    clashes = [rel for rel, _ in targets if (folder / rel).exists()]
    if clashes:
        raise LakeError(f"{folder} already has {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''}: "
                        "`lake init` never overwrites a file; pick an empty or new folder")
    project = _project_name(folder)
    written = []
    for rel, node in targets:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if node is None:
            path.write_text(GITIGNORE, encoding="utf-8")
        elif rel in TEMPLATED:
            path.write_text(Template(node.read_text(encoding="utf-8")).safe_substitute(project=project),
                            encoding="utf-8")
        else:
            path.write_bytes(node.read_bytes())
        written.append(rel)
    landed = 0
    if example == "stocks":
        landing = folder / "lakehouse" / "landing" / "stocks"
        landed = land_stocks(landing)
        written += [str(p.relative_to(folder)) for p in sorted(landing.glob("*.csv"))]
    return Scaffold(folder, tuple(sorted(written)), landed)


def _project_name(folder: Path) -> str:
    name = "".join(c if c.isalnum() else "_" for c in folder.resolve().name.lower()).strip("_")
    return name or "lake"


def land_stocks(landing: Path, years: set[str] | None = None) -> int:
    """Split the vega-datasets stocks table into yearly CSV files (as a source system would).

    Returns:
        The rows landed.
    """
    try:
        from vega_datasets import local_data  # heavy (pandas) and needed by the stocks example only
    except ImportError as exc:
        raise NotInstalledError("the stocks example needs the vega-datasets package: "
                                "pip install vega-datasets") from exc
    source = Path(local_data.stocks.filepath)
    rows = list(csv.reader(source.read_text(encoding="utf-8").splitlines()))
    landing.mkdir(parents=True, exist_ok=True)
    by_year: dict[str, list[list[str]]] = {}
    for row in rows[1:]:
        by_year.setdefault(row[1].split()[-1], []).append(row)
    count = 0
    for year, year_rows in sorted(by_year.items()):
        if years is not None and year not in years:
            continue
        with open(landing / f"stocks_{year}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(rows[0])
            writer.writerows(year_rows)
        count += len(year_rows)
    return count
